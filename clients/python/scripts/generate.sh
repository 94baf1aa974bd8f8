#!/usr/bin/env bash
# Generates src/airlock_client/models.py (or $1) from docs/openapi.json with
# the options in pyproject.toml's [tool.datamodel-codegen].
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/airlock_client/models.py}
datamodel-codegen --input ../../docs/openapi.json --output "$out" 2>/dev/null
