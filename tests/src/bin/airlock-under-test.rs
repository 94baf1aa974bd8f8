//! The `airlock` CLI, built inside this package so the end-to-end tests can
//! run it through `CARGO_BIN_EXE_airlock-under-test`. It is the very same
//! code as the `airlock` binary: `airlock_runtime::cli::main`.

fn main() -> std::process::ExitCode {
    airlock_runtime::cli::main()
}
