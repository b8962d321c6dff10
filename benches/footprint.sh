#!/usr/bin/env bash
# The proxy's footprint: time from exec to ready, idle RSS, and RSS with 1,024 open keep-alive
# connections (each has had one request answered: `GET /healthz`, then stays open, idle).
# Figures only, printed; nothing is asserted. Everything on 127.0.0.1; the one teamgate process
# started here is stopped by pid on exit.
#
# Usage: bash benches/footprint.sh        (builds target/release/teamgate; SKIP_BUILD=1 to not)
#   CONNECTIONS=1024 ROUNDS=5
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$REPO/target/release/teamgate
CONNECTIONS=${CONNECTIONS:-1024}
ROUNDS=${ROUNDS:-5}
TMP=$(mktemp -d /tmp/teamgate-footprint.XXXXXX)
PID=""
cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    (cd "$REPO" && cargo build --release --quiet)
fi
ulimit -n 4096 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# One backend whose vendor is never called here (a closed port): the footprint of the proxy.
cat >"$TMP/config.toml" <<EOF
default_backend = "grafana"
[server]
max_connections = $((CONNECTIONS + 64))
[backends.grafana]
mapping = "$REPO/mappings/grafana.toml"
base_url = "http://127.0.0.1:9"
credential_env = "TEAMGATE_FOOTPRINT_CREDENTIAL"
EOF

ready_ms=()
idle_kb=()
for round in $(seq "$ROUNDS"); do
    port=$(free_port)
    start=$(date +%s%N)
    TEAMGATE_FOOTPRINT_CREDENTIAL=x TEAMGATE_LISTEN=127.0.0.1:$port \
        "$BIN" serve --config "$TMP/config.toml" 2>"$TMP/log" &
    PID=$!
    for _ in $(seq 2000); do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then break; fi
        sleep 0.001
    done
    ready_ms+=($((($(date +%s%N) - start) / 1000000)))
    sleep 1
    idle_kb+=("$(rss_kb "$PID")")
    if ((round < ROUNDS)); then
        kill -KILL "$PID"
        wait "$PID" 2>/dev/null || true
    fi
done

# The last process stays up: open the connections and hold them.
open_kb=$(python3 - "$port" "$CONNECTIONS" "$PID" <<'PY'
import socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    s.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    assert data.startswith(b"HTTP/1.1 200"), data[:40]
time.sleep(1)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
print(rss)
for s in conns:
    s.close()
PY
)
sorted_ready=$(printf '%s\n' "${ready_ms[@]}" | sort -n | tr '\n' ' ')
sorted_idle=$(printf '%s\n' "${idle_kb[@]}" | sort -n | tr '\n' ' ')
echo "ready to serve (exec to first /healthz 200), ms, $ROUNDS starts: $sorted_ready"
echo "idle RSS, KiB, $ROUNDS starts: $sorted_idle"
echo "RSS with $CONNECTIONS open keep-alive connections, KiB: $open_kb"
