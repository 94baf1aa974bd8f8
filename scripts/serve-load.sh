#!/usr/bin/env bash
# Load benchmark of `airlock serve` (not a test): numbers go to
# docs/benchmarks.md by hand, with the machine they came from.
#
#   scripts/serve-load.sh            # needs `wrk` (Debian: apt-get install wrk)
#   scripts/serve-load.sh --database-url postgres://…   # also PostgreSQL, 1 and 2 nodes
#                                    # (scripts/pg-local.sh starts a local one)
#
# 1. `hello` through the runs API and through its HTTP trigger, records on
#    and with no-store, at concurrency 64;
# 2. the proxy against a direct request to the same loopback upstream, at
#    concurrency 1 and 64;
# 3. with a database URL: the trigger on PostgreSQL with one node, and with
#    two nodes sharing the database (ratios against row 1's SQLite trigger).
#
# Everything runs on this machine: wrk, the server and the upstream share
# its cores, so absolute numbers are the machine's; compare the rows of one
# run with each other.
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL=${BENCH_DATABASE_URL:-}
while [ $# -gt 0 ]; do
    case $1 in
    --database-url) DATABASE_URL=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 2; }

echo "== building (release)" >&2
cargo build --release --workspace --bins >&2
(cd examples && cargo build --release --target wasm32-wasip2 -p hello >&2)
AIRLOCK=$PWD/target/release/airlock
UPSTREAM=$PWD/target/release/bench-upstream
HELLO=$PWD/examples/target/wasm32-wasip2/release/hello.wasm

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export AIRLOCK_MASTER_KEY
AIRLOCK_MASTER_KEY=$("$AIRLOCK" keygen)
export AIRLOCK_DATA=$WORK/data

# The upstream, and an app pointing at it.
"$UPSTREAM" >"$WORK/upstream.out" &
PIDS+=($!)
until grep -q listening "$WORK/upstream.out" 2>/dev/null; do sleep 0.1; done
UP=$(sed -n 's/^listening on //p' "$WORK/upstream.out")
mkdir -p "$WORK/apps"
cat >"$WORK/apps/bench.toml" <<EOF
slug = "bench"
name = "bench"
auth = "bearer"
base_url = "$UP"
allowed_domains = ["127.0.0.1"]
[credential]
header = "Authorization"
template = "Bearer {{token}}"
EOF

# Quiet logs: the benchmark measures serving, not log formatting.
AIRLOCK_LOG=error "$AIRLOCK" serve --listen 127.0.0.1:0 \
    --allow-range 127.0.0.0/8 --apps-dir "$WORK/apps" \
    --http-rate-limit 4000000000 --trigger-rate-limit 4000000000 >"$WORK/serve.out" &
PIDS+=($!)
until grep -q listening "$WORK/serve.out" 2>/dev/null; do sleep 0.1; done
BASE=$(sed -n 's/^listening on //p' "$WORK/serve.out")

KEY=$("$AIRLOCK" admin create-key)
H=(-H "authorization: Bearer $KEY")
curl -sf "${H[@]}" -H 'content-type: application/json' -d '{"name":"bench"}' \
    "$BASE/v1/projects" >/dev/null
printf 'name = "hello"\n' >"$WORK/airlock.toml"
"$AIRLOCK" push "$HELLO" --manifest "$WORK/airlock.toml" --server "$BASE" \
    --project bench --api-key "$KEY" >/dev/null
TRIGGER=$(curl -sf "${H[@]}" -H 'content-type: application/json' -d '{}' \
    "$BASE/v1/projects/bench/steps/hello/triggers" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
ACCOUNT=$("$AIRLOCK" accounts --project bench --apps-dir "$WORK/apps" add \
    --app bench --external-user u1 --bearer bench-token-123456)

cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"input":{"name":"load"}}'
wrk.headers["content-type"] = "application/json"
EOF

cat >"$WORK/trigger.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"load"}'
wrk.headers["content-type"] = "application/json"
EOF

# One wrk run; prints "label  req/s  p50  p99".
measure() {
    local label=$1 conns=$2
    shift 2
    local out
    out=$(wrk -t"$((conns < THREADS ? conns : THREADS))" -c"$conns" -d"$DURATION" --latency "$@")
    local rps p50 p99 non2xx
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$conns" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "| path | concurrency | req/s | p50 | p99 | non-2xx |"
echo "| --- | --- | --- | --- | --- | --- |"
RUNS="$BASE/v1/projects/bench/steps/hello/runs"
measure "runs API, records on" 64 -s "$WORK/post.lua" "${H[@]}" "$RUNS"
measure "runs API, no-store" 64 -s "$WORK/post.lua" "${H[@]}" -H 'x-airlock-nostore: 1' "$RUNS"
measure "trigger" 64 -s "$WORK/trigger.lua" "$BASE$TRIGGER"
PROXY="$BASE/v1/projects/bench/proxy/$(printf '/ok' | basenc --base64url -w0 | tr -d '=')"
PROXY="$PROXY?external_user_id=u1&account_id=$ACCOUNT"
for c in 1 64; do
    measure "upstream direct" "$c" "$UP/ok"
    measure "through the proxy" "$c" "${H[@]}" "$PROXY"
done

# --- PostgreSQL: the trigger path on one node and on two (issue 12) ---
# With a database URL (`--database-url URL`, or BENCH_DATABASE_URL; an
# empty database of its own: the runs pile up), the trigger is measured
# again with one node on PostgreSQL and with two nodes sharing it, two wrk
# processes (half the connections each) hitting one node each at once.
[ -n "$DATABASE_URL" ] || exit 0

pg_node() {
    local name=$1
    AIRLOCK_LOG=error AIRLOCK_DATA=$WORK/$name "$AIRLOCK" serve --listen 127.0.0.1:0 \
        --database-url "$DATABASE_URL" --trigger-rate-limit 4000000000 \
        --http-rate-limit 4000000000 >"$WORK/$name.out" &
    PIDS+=($!)
    until grep -q listening "$WORK/$name.out" 2>/dev/null; do sleep 0.1; done
    sed -n 's/^listening on //p' "$WORK/$name.out"
}
PG1=$(pg_node pg1)
PGKEY=$(AIRLOCK_DATA=$WORK/pg1 "$AIRLOCK" admin create-key --database-url "$DATABASE_URL" 2>/dev/null)
curl -sf -H "authorization: Bearer $PGKEY" -H 'content-type: application/json' \
    -d '{"name":"bench"}' "$PG1/v1/projects" >/dev/null || true
"$AIRLOCK" push "$HELLO" --manifest "$WORK/airlock.toml" --server "$PG1" \
    --project bench --api-key "$PGKEY" >/dev/null
PGTRIGGER=$(curl -sf -H "authorization: Bearer $PGKEY" -H 'content-type: application/json' \
    -d '{}' "$PG1/v1/projects/bench/steps/hello/triggers" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
measure "trigger, PostgreSQL, 1 node" 64 -s "$WORK/trigger.lua" "$PG1$PGTRIGGER"
PG2=$(pg_node pg2)
# Both nodes at once: sum the rates; the latencies are each node's.
wrk -t1 -c32 -d"$DURATION" --latency -s "$WORK/trigger.lua" "$PG1$PGTRIGGER" >"$WORK/wrk1.out" &
W1=$!
wrk -t1 -c32 -d"$DURATION" --latency -s "$WORK/trigger.lua" "$PG2$PGTRIGGER" >"$WORK/wrk2.out"
wait "$W1"
rps=$(awk '/^Requests\/sec/ {s += $2} END {printf "%.2f", s}' "$WORK/wrk1.out" "$WORK/wrk2.out")
p50=$(awk '$1 == "50%" {printf "%s ", $2}' "$WORK/wrk1.out" "$WORK/wrk2.out")
p99=$(awk '$1 == "99%" {printf "%s ", $2}' "$WORK/wrk1.out" "$WORK/wrk2.out")
non2xx=$(awk '/Non-2xx/ {s += $5} END {print s + 0}' "$WORK/wrk1.out" "$WORK/wrk2.out")
printf '| %s | %s | %s | %s | %s | %s |\n' "trigger, PostgreSQL, 2 nodes" 64 "$rps" "$p50" "$p99" "$non2xx"
