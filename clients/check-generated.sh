#!/usr/bin/env bash
# Fails when the SDKs' generated model types are stale: regenerates them from
# docs/openapi.json into a temporary directory with the pinned generators
# (clients/typescript's lock file, clients/python/requirements-dev.txt) and
# compares with the committed files. Fix: run the generators (README,
# "Client SDKs") and commit.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

(cd typescript && node_modules/.bin/openapi-typescript ../../docs/openapi.json -o "$tmp/schema.d.ts" >/dev/null 2>&1)
if ! diff -u typescript/src/schema.d.ts "$tmp/schema.d.ts" >"$tmp/ts.diff"; then
  echo "error: clients/typescript/src/schema.d.ts is stale; run \`npm run generate\` in clients/typescript" >&2
  head -40 "$tmp/ts.diff" >&2
  status=1
fi

python/scripts/generate.sh "$tmp/models.py"
if ! diff -u python/src/airlock_client/models.py "$tmp/models.py" >"$tmp/py.diff"; then
  echo "error: clients/python/src/airlock_client/models.py is stale; run clients/python/scripts/generate.sh" >&2
  head -40 "$tmp/py.diff" >&2
  status=1
fi
exit $status
