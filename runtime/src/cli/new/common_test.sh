#!/usr/bin/env bash
# Builds the step and runs it with `airlock run` (AIRLOCK=path/to/airlock if
# it is not on PATH), checking its output, its log line and its error.
set -euo pipefail
cd "$(dirname "$0")"
airlock=${AIRLOCK:-airlock}
./build.sh

fail() { echo "FAIL: $*" >&2; exit 1; }
out=$("$airlock" run {{name}}.wasm --manifest airlock.toml --input '{"name": "Ada"}' 2>log.txt) ||
  fail "the run failed: $(cat log.txt)"
[ "$out" = '{"greeting":"Hello, Ada!"}' ] || fail "output: $out"
grep -qx '\[INFO\] greeting Ada' log.txt || fail "log: $(cat log.txt)"

set +e
"$airlock" run {{name}}.wasm --manifest airlock.toml --input '{"name": ""}' >/dev/null 2>log.txt
code=$?
set -e
[ "$code" = 1 ] || fail "an empty name should exit 1, got $code"
grep -q empty_name log.txt || fail "error: $(cat log.txt)"
rm -f log.txt
echo "ok: {{name}} builds and runs"
