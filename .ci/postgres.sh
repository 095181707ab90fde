#!/usr/bin/env bash
# Start (or reuse) a throw-away PostgreSQL server for the test suite; print its URL.
#
# Idempotent: installs Debian's `postgresql` if no server binaries are found, creates a
# cluster in .ci/pgdata/cluster (owned by the `postgres` user: the server refuses to run
# as root), starts it on a free 127.0.0.1 port with its unix socket in .ci/pgdata, and
# creates the role and database `leadscore_test`. Run again, it reuses the running server.
# Only stdout's last line is the URL (SQLAlchemy form, psycopg 3 driver):
#   postgresql+psycopg://leadscore_test:leadscore_test@127.0.0.1:PORT/leadscore_test
# Stop it with: .ci/postgres.sh stop
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE="${LEADSCORE_PG_DIR:-$HERE/pgdata}"
DATA="$BASE/cluster"
NAME=leadscore_test

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

PGBIN="$(find_bin)"
if [[ -z "$PGBIN" || ! -x "$PGBIN/initdb" ]]; then
    log "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
    PGBIN="$(find_bin)"
fi

# Run server commands as `postgres` when we are root; as ourselves otherwise.
if [[ "$(id -u)" == 0 ]]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

mkdir -p "$BASE"
echo '*' > "$BASE/.gitignore"          # never committed
chown "$OWNER" "$BASE"
if ! as_owner test -w "$BASE" -a -x "$BASE"; then
    # the checkout is not reachable by `postgres` (e.g. under a 0700 home): use /tmp
    BASE="/tmp/leadscore-pg-$(echo "$HERE" | md5sum | cut -c1-8)"
    log "project folder not writable by $OWNER; using $BASE"
    mkdir -p "$BASE" && chown "$OWNER" "$BASE"
fi
DATA="$BASE/cluster"

if [[ "${1:-}" == stop ]]; then
    if [[ -f "$DATA/PG_VERSION" ]]; then
        as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
    fi
    exit 0
fi

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initdb $DATA"
    as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
fi

if as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    PORT="$(cat "$BASE/port")"
    log "reusing the server on port $PORT"
else
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "$PORT" > "$BASE/port"
    log "starting on 127.0.0.1:$PORT"
    # fsync off: a test cluster, thrown away; crash safety of the *store* is tested by
    # killing the client, which does not depend on the server's fsync.
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -w -t 60 -l "$BASE/server.log" start \
        -o "-p $PORT -k $BASE -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >&2
fi

psql_admin() { as_owner psql -h "$BASE" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$NAME'")" != 1 ]]; then
    psql_admin -c "CREATE ROLE $NAME LOGIN PASSWORD '$NAME' CREATEDB" >&2
fi
if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$NAME'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE $NAME OWNER $NAME" >&2
fi
echo "postgresql+psycopg://$NAME:$NAME@127.0.0.1:$PORT/$NAME"
