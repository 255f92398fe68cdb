#!/usr/bin/env bash
# bench/profile.sh [N] — where a refresh spends its CPU outside the network
# wait: perf samples one backend while ig_refresh_identities refreshes N
# participants (default 20,000) against the mock with no added latency, so
# the work is all CPU (ours, libcurl's, PostgreSQL's, the mock's).
# Prints the top symbols of the backend (self time) and by library.
#
#   bench/profile.sh --tls [N]   the same through nghttpx: TLS + h2 with a CA
#                                made for the run (bench/tls.sh); the proxy's
#                                own CPU is not counted
set -u
source "$(dirname "$0")/../scripts/lib.sh"
source "$(dirname "$0")/tls.sh"
TLS=
if [ "${1:-}" = --tls ]; then TLS=1; shift; fi
N=${1:-20000}
ACCOUNT=17841400000000001

DEPS+=(linux-perf)
ensure_deps
build_extension
DIR=$(make_workdir igid-profile)
PROXY_PID=
trap 'stop_cluster; stop_mock; [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; [ -n "${KEEP_WORK:-}" ] || rm -rf "$DIR"' EXIT
start_mock "$DIR" --generate-users "$N"
SESSION_SETTINGS=
if [ -n "$TLS" ]; then
    mkdir -p "$DIR/tls"; chmod 755 "$DIR/tls"
    tls_make_certs "$DIR/tls"
    chown -R "$PG_USER" "$DIR/tls"
    tls_start_proxy "$DIR/tls" h2 h2,http/1.1
    SESSION_SETTINGS="SET ig_identity.graph_api_url = 'https://localhost:$PROXY_PORT/v21.0';
SET ig_identity.ca_file = '$DIR/tls/ca.crt';"
fi
start_cluster "$DIR" "$(free_port)" postgres
sql() { psql_as "$1" -v ON_ERROR_STOP=1 -qtA; }
sql postgres >/dev/null <<SQL
CREATE DATABASE prof;
SQL
sql prof >/dev/null <<SQL
CREATE EXTENSION ig_identity;
SELECT ig_connect_account('loc_p', '$ACCOUNT', '$ACCOUNT', 'mock-token-A-0123456789', 'graph.facebook.com');
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
SELECT 'conv.' || g, '$ACCOUNT', 'loc_p', (2000000000000000 + g)::text, now() FROM generate_series(0, $N - 1) g;
SQL

rm -f "$DIR/pid"
psql_as prof -qtA >"$DIR/out" 2>&1 <<SQL &
\o $DIR/pid
SELECT pg_backend_pid();
\o
SELECT pg_sleep(1);
SET ig_identity.max_concurrency = 16;
$SESSION_SETTINGS
SELECT clock_timestamp() AS t0 \gset
SELECT refreshed, failed FROM ig_refresh_identities('loc_p');
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2) AS seconds;
SQL
bg=$!
for _ in $(seq 1 100); do [ -s "$DIR/pid" ] && break; sleep 0.05; done
pid=$(tr -d ' \n' <"$DIR/pid")
perf record -q -F 999 -g -p "$pid" -o "$DIR/perf.data" >/dev/null 2>&1 &
perf_pid=$!
# CPU seconds (user + system) of the backend and of the mock, sampled until
# the session ends (the backend's /proc entry goes with it)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }
hz=$(getconf CLK_TCK)
b0=$(ticks "$pid"); m0=$(ticks "$MOCK_PID"); b1=$b0; m1=$m0
while kill -0 "$bg" 2>/dev/null; do
    t=$(ticks "$pid"); [ -n "$t" ] && b1=$t
    t=$(ticks "$MOCK_PID"); [ -n "$t" ] && m1=$t
    sleep 0.2
done
kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null
echo "refresh of $N${TLS:+ over TLS + h2} (refreshed|failed, seconds):"; grep -v '^$' "$DIR/out"
secs=$(tail -n 1 "$DIR/out")
python3 -c "
b, m, s = ($b1 - $b0) / $hz, ($m1 - $m0) / $hz, $secs
print(f'CPU: backend {b:.1f} s ({b / s * 100:.0f} % of the wall time, {b / $N * 1e6:.0f} us per profile),'
      f' mock {m:.1f} s ({m / s * 100:.0f} %), on $(nproc) cores')"
echo
echo "== backend CPU by library (self) =="
perf report -i "$DIR/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo
echo "== top symbols (self) =="
perf report -i "$DIR/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -30
