# scripts/lib.sh — shared by scripts/demo.sh and scripts/test.sh:
# installs what is missing, builds, and runs a throwaway PostgreSQL cluster
# and the Graph API mock as the unprivileged postgres user.
# shellcheck shell=bash

IGID_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything follows PG_CONFIG. Unset, it is the newest server installed
# from Debian's packages (only 15 is tested; see the README).
if [ -z "${PG_CONFIG:-}" ]; then
    PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    PG_MAJOR=${PG_MAJOR:-15}
    PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
else
    PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
fi
export PG_CONFIG
# pg_config_dirs: sets PGBIN and PGXS_DIR from PG_CONFIG (once it exists).
pg_config_dirs() {
    [ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null || return 0
    PGBIN=$("$PG_CONFIG" --bindir)
    PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
}
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
pg_config_dirs
PYTHON=/usr/bin/python3   # Debian's, readable by the postgres user
PG_USER=postgres

DEPS=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-cron
      libcurl4-openssl-dev libjansson-dev libssl-dev libgtest-dev libipc-run-perl
      g++ make cmake pkg-config clang libclang-rt-14-dev python3
      postgresql-server-dev-all debhelper dpkg-dev fakeroot nghttp2-proxy openssl)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages the build and the tests need, once.
ensure_deps() {
    local missing=()
    for p in "${DEPS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install failed"
    pg_config_dirs
}

# Builds and installs the extension into the system PostgreSQL.
build_extension() {
    log "building ig_identity"
    make -C "$IGID_ROOT" -s -j2 PG_CONFIG="$PG_CONFIG" >/dev/null || die "build failed"
    make -C "$IGID_ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null || die "install failed"
}

# make_workdir [PREFIX]: a work directory the postgres user owns,
# /tmp/PREFIX.XXXXXX (default prefix ig_identity).
make_workdir() {
    local d
    d=$(mktemp -d "/tmp/${1:-ig_identity}.XXXXXX")
    chmod 755 "$d"
    chown "$PG_USER" "$d"
    echo "$d"
}

# A TCP port nobody listens on.
free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_pg() { runuser -u "$PG_USER" -- env PATH="$PGBIN:$PATH" "$@"; }

# start_mock DIR [args...]: starts test/mock_graph on a free loopback port;
# sets MOCK_PID and MOCK_PORT.
start_mock() {
    local dir=$1; shift
    local out="$dir/mock.out"
    "$PYTHON" "$IGID_ROOT/test/mock_graph/mock_graph.py" --port 0 --quiet "$@" >"$out" 2>"$dir/mock.err" &
    MOCK_PID=$!
    for _ in $(seq 1 100); do
        MOCK_PORT=$(sed -n 's/^mock_graph listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [ -n "$MOCK_PORT" ] && return 0
        kill -0 "$MOCK_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/mock.err" >&2
    die "the Graph API mock did not start"
}

stop_mock() {
    [ -n "${MOCK_PID:-}" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    MOCK_PID=
}

# write_pg_conf FILE DATABASE: settings every throwaway cluster uses
# (test/pg_test.conf.in, shared with make installcheck).
# A fresh random key file beside FILE (0600, owned by the server's user).
write_pg_conf() {
    local key
    key=$(dirname "$1")/ig_identity.key
    rm -f "$key"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$key")
    chown "$PG_USER" "$key"
    sed -e "s/@MOCK_PORT@/${MOCK_PORT}/" -e "s/@DATABASE@/$2/" -e "s|@KEY_FILE@|$key|" \
        "$IGID_ROOT/test/pg_test.conf.in" >"$1"
}

# start_cluster DIR PORT DATABASE: initdb + start, as postgres, socket in DIR.
start_cluster() {
    local dir=$1 port=$2 db=$3
    as_pg initdb -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    write_pg_conf "$dir/pg_test.conf" "$db"
    chown "$PG_USER" "$dir/pg_test.conf"
    echo "include '$dir/pg_test.conf'" >>"$dir/data/postgresql.conf"
    as_pg pg_ctl -D "$dir/data" -o "-p $port -k $dir" -l "$dir/server.log" -w start >/dev/null \
        || { cat "$dir/server.log" >&2; die "server did not start"; }
    CLUSTER_DIR=$dir
    CLUSTER_PORT=$port
}

stop_cluster() {
    [ -n "${CLUSTER_DIR:-}" ] && as_pg pg_ctl -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1
    CLUSTER_DIR=
}

# psql_as DB [psql args...]: psql into the throwaway cluster as postgres.
psql_as() {
    local db=$1; shift
    as_pg psql -X -h "$CLUSTER_DIR" -p "$CLUSTER_PORT" -U postgres -d "$db" "$@"
}
