//! `airlock serve`.

use crate::cli::exit;
use crate::server::{self, ServeArgs, ServeConfig, ServeError};

/// `airlock serve`: exit 2 on bad settings (an invalid app file too) or no
/// master key, 4 otherwise.
pub async fn run(args: ServeArgs) -> u8 {
    let config = match ServeConfig::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    match server::serve(config).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                ServeError::Config(_) | ServeError::Key(_) | ServeError::Catalog(_) => exit::USAGE,
                ServeError::Store(s) if s.is_usage() => exit::USAGE,
                _ => exit::INTERNAL,
            }
        }
    }
}
