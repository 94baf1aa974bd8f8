#!/usr/bin/env bash
# Builds {{name}}.wasm with the JavaScript SDK of the Airlock checkout this
# project was made from (needs its pinned tools: `npm ci --prefix {{sdk}}/js`).
set -euo pipefail
cd "$(dirname "$0")"
exec node "{{sdk}}/js/build.mjs" step.js -o {{name}}.wasm
