#!/usr/bin/env bash
# Builds {{name}}.wasm with the Python SDK of the Airlock checkout this
# project was made from (needs its pinned componentize-py:
# `python3 -m pip install -r {{sdk}}/python/requirements.txt`).
set -euo pipefail
cd "$(dirname "$0")"
exec "{{sdk}}/python/build.sh" app.py {{name}}.wasm
