#!/usr/bin/env bash
# A local PostgreSQL 15 for trying Airlock's multi-node mode (the README's
# "Running several nodes") and for the load benchmark. Not for production:
# one cluster in DIR, on 127.0.0.1, trust authentication, fsync on.
#
#   scripts/pg-local.sh start DIR [PORT]   # prints the database URL
#   scripts/pg-local.sh stop DIR
#
# Needs Debian's postgresql package (/usr/lib/postgresql/15/bin). The server
# refuses to run as root, so as root it runs as the `postgres` user.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
port=${3:-5433}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,11p' "$0" >&2; exit 2; }
[ -x "$PG_BIN/initdb" ] || {
    echo "PostgreSQL 15 is missing: apt-get install -y postgresql" >&2
    exit 2
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_owner "$PG_BIN/initdb" -D "$dir" -U airlock --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >/dev/null
    fi
    as_owner "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
    as_owner "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U airlock -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname = 'airlock'" | grep -q 1 ||
        as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U airlock airlock
    echo "postgres://airlock@127.0.0.1:$port/airlock"
    ;;
stop)
    as_owner "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
*)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
