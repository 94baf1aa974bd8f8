#!/usr/bin/env bash
# Builds a Python step into a component: build.sh APP.py OUT.wasm
#
# APP.py is the module holding the @airlock_sdk.step function; its directory
# is on the module path (pure-Python packages vendored beside it work), and
# so is this SDK. The component targets airlock:step/step (wit/ of the
# repository, two levels up from here) through this SDK's world
# airlock:python-sdk/step (wit/ here), which adds wasi:http/types and
# outgoing-handler for airlock_sdk.wasi_http (urllib.request over wasi:http).
#
# AIRLOCK_GUEST_CACHE=DIR reuses a component built from the same inputs
# (the app's directory, this SDK and script, the WIT and the tool's version), keyed
# by their SHA-256: componentize-py takes tens of seconds per step.
set -euo pipefail

usage() { echo "usage: $0 APP.py OUT.wasm" >&2; exit 2; }
[ $# -eq 2 ] || usage
app=$1 out=$2
[ -f "$app" ] || { echo "error: $app: no such file" >&2; exit 2; }

sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wit=${AIRLOCK_WIT:-$sdk/../../wit}
pinned=$(sed -n 's/^componentize-py==//p' "$sdk/requirements.txt")
if ! command -v componentize-py >/dev/null; then
  echo "error: componentize-py is not installed; install the pinned version with" >&2
  echo "  python3 -m pip install -r $sdk/requirements.txt" >&2
  exit 127
fi
have=$(componentize-py --version | awk '{print $2}')
if [ "$have" != "$pinned" ]; then
  echo "error: componentize-py $have is installed; this SDK is built with $pinned:" >&2
  echo "  python3 -m pip install -r $sdk/requirements.txt" >&2
  exit 2
fi

app_dir=$(cd "$(dirname "$app")" && pwd)
module=$(basename "$app" .py)
world=airlock:python-sdk/step

build() {
  # One WIT directory: the SDK's world, its WASI deps and Airlock's wit/.
  local witdir
  witdir=$(mktemp -d)
  cp -r "$sdk/wit/." "$witdir/"
  mkdir -p "$witdir/deps/airlock-step"
  cp "$wit"/*.wit "$witdir/deps/airlock-step/"
  if ! componentize-py -q -d "$witdir" -w "$world" componentize "$module" \
    -p "$app_dir" -p "$sdk" -o "$1"; then
    rm -rf "$witdir"
    return 1
  fi
  rm -rf "$witdir"
}

mkdir -p "$(dirname "$out")"
if [ -z "${AIRLOCK_GUEST_CACHE:-}" ]; then
  build "$out"
  exit 0
fi
# Paths relative to each root, so the key is the same in any checkout.
digest() { (cd "$1" && find . -type f \( -name '*.py' -o -name '*.wit' \) \
             -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 -r sha256sum); }
key=$( { echo "componentize-py $have $world $module"
         echo script; sha256sum < "${BASH_SOURCE[0]}"
         echo app; digest "$app_dir"; echo sdk; digest "$sdk"; echo wit; digest "$wit"; } |
       sha256sum | cut -c1-32)
cached=$AIRLOCK_GUEST_CACHE/python-$key.wasm
if [ ! -f "$cached" ]; then
  mkdir -p "$AIRLOCK_GUEST_CACHE"
  build "$cached.tmp.$$"
  mv "$cached.tmp.$$" "$cached"
fi
cp "$cached" "$out"
