# bench/tls.sh — sourced by bench/run.sh: a throwaway test CA and server
# certificate (openssl, made at run time, removed with the work directory)
# and nghttpx (Debian's nghttp2-proxy) terminating TLS in front of the mock.
# shellcheck shell=bash

# tls_make_certs DIR: DIR/ca.crt and a certificate for localhost.
tls_make_certs() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=ig_identity bench CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >/dev/null 2>&1 || die "openssl: CA"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" >/dev/null 2>&1 \
        || die "openssl: request"
    printf 'subjectAltName = DNS:localhost\nextendedKeyUsage = serverAuth\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/server.ext" -out "$d/server.crt" >/dev/null 2>&1 || die "openssl: sign"
    chmod 644 "$d"/*.crt "$d"/*.key
}

# tls_start_proxy DIR NAME ALPN: nghttpx on a free port in front of the
# mock; sets PROXY_PORT and PROXY_PID, logs to DIR/NAME.access.log
# ("remote_port alpn resumed status path", no query and no headers).
tls_start_proxy() {
    local d=$1 name=$2 alpn=$3 port
    port=$(free_port)
    cat >"$d/$name.conf" <<CONF
frontend=127.0.0.1,$port
backend=127.0.0.1,$MOCK_PORT;;proto=http/1.1
private-key-file=$d/server.key
certificate-file=$d/server.crt
npn-list=$alpn
workers=1
accesslog-file=$d/$name.access.log
accesslog-format=\$remote_port \$alpn \$tls_session_reused \$status \$path_without_query
errorlog-file=$d/$name.error.log
frontend-http2-max-concurrent-streams=100
CONF
    nghttpx --conf="$d/$name.conf" >/dev/null 2>&1 &
    PROXY_PID=$!
    PROXY_PORT=$port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$d/$name.error.log" >&2
    die "nghttpx did not start"
}

# tls_counts LOG: "<requests> <connections> <resumed handshakes>" from an access log.
tls_counts() {
    awk '{ n++; if (!($1 in c)) { c[$1] = 1; conns++; if ($3 == "r") resumed++ } }
         END { printf "%d %d %d\n", n, conns, resumed }' "$1"
}
