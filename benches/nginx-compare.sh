#!/usr/bin/env bash
# Load benchmark of the whole proxy against nginx, in the same run (DESIGN.md §6).
#
# On loopback it starts:
#   - a fast stand-in vendor: an nginx answering Grafana-shaped JSON for what the grafana
#     mapping sends for get_team (GET /api/teams/{id}) and list_teams
#     (GET /api/teams/search?page=1&perpage=50: 50 teams, totalCount/page/perPage);
#   - nginx as a keep-alive pass-through to it (worker_processes 1, upstream keepalive 128,
#     proxy_http_version 1.1, access log off): the cost of a proxy that translates nothing;
#   - teamgate with the read cache off (full translation on every request);
#   - teamgate with the read cache on (default TTL 5 s);
# and drives each with the same wrk settings, in several interleaved rounds, for get_team and
# for list_teams of 50 teams. nginx gets the vendor paths, teamgate the canonical ones.
#
# With PIN=1 (the default on 2 or more cores) every server under test runs alone on core 0
# (taskset) and wrk and the stand-in run on core 1.
#
# Reported per run and as medians over rounds: req/s, p50, p99, server CPU µs per request
# (utime+stime from /proc/<pid>/stat, all threads; nginx: master + workers), RSS (VmRSS after
# the run; nginx: master + workers summed), and each as a ratio to nginx from the same round;
# plus teamgate's log bytes per request (its stderr, default log level).
#
# Usage: bash benches/nginx-compare.sh
#   ROUNDS=3 DURATION=10 CONNECTIONS=64 WARMUP=2   (defaults)
#   QUICK=1          smoke run: 1 round of 2 s, 1 s warm-up
#   PIN=0|1          pin or not (default 1 when the machine has >= 2 cores)
#   RESULTS=path     where the tables go (default target/nginx-compare/results-<time>.md)
#   QUIET_WAIT=120   on a shared machine: before each run, wait up to this many seconds for
#                    the machine to be quiet (all cores under QUIET_BUSY=10 % busy over 2 s;
#                    0: never wait), and run again (up to RUN_TRIES=3 times in all) a pinned
#                    run during which other work took more than OTHER_MAX=10 % of core 0 or
#                    of core 1; all waiting stops after QUIET_BUDGET=1800 s. Other work that
#                    remains shows in the core0_other_pct and core1_other_pct columns.
#   KEEP_TMP=1       keep the temp dir (configs, logs, raw wrk output)
#   SKIP_BUILD=1     use target/release/teamgate as it is
# Needs: cargo, curl, taskset (util-linux); installs nginx and wrk from the system packages
# (apt-get) when they are missing. Every process it starts is stopped by pid on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2}
if [[ ${QUICK:-0} == 1 ]]; then
    ROUNDS=1
    DURATION=2
    WARMUP=1
fi
CORES=$(nproc)
if [[ -z ${PIN:-} ]]; then
    if ((CORES >= 2)); then PIN=1; else PIN=0; fi
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${RESULTS:-$REPO/target/nginx-compare/results-$STAMP.md}
CLK_TCK=$(getconf CLK_TCK)
TEAMGATE_BIN=$REPO/target/release/teamgate

log() { printf '%s\n' "$*" >&2; }
die() {
    log "nginx-compare: $*"
    exit 1
}

# ----- processes: every one recorded by pid, stopped by pid on exit ---------------------------

PIDS=()       # processes this script started (nginx masters, teamgate, wrk)
CHILD_PIDS=() # nginx workers of those masters, recorded when seen
TMP=""

alive() {
    # a pid that exists and is not a zombie
    [[ -r /proc/$1/stat ]] || return 1
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z ]]
}

cleanup() {
    local rc=$?
    set +e
    local pid i any
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        any=0
        for pid in "${PIDS[@]}" "${CHILD_PIDS[@]}"; do
            if alive "$pid"; then any=1; fi
        done
        ((any == 0)) && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}" "${CHILD_PIDS[@]}"; do
        if alive "$pid"; then
            log "nginx-compare: pid $pid did not stop on TERM; sending KILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
            log "nginx-compare: temp dir kept: $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background, stdout/stderr to $TMP/<name>.out/.err; sets STARTED_PID.
start() {
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# Waits (bounded) until pid $1 (or one of its children) listens on port $2.
wait_listening() {
    local pid=$1 port=$2 name=$3 i
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || die "$name (pid $pid) exited at start; see $TMP/$name.err"
        if ss -Htlnp "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
            return 0
        fi
        if ss -Htlnp "sport = :$port" 2>/dev/null | grep -q "pid="; then
            local child
            for child in $(pgrep -P "$pid" || true); do
                ss -Htlnp "sport = :$port" | grep -q "pid=$child," && return 0
            done
        fi
        sleep 0.1
    done
    die "$name (pid $pid) is not listening on 127.0.0.1:$port after 10 s; see $TMP/$name.err"
}

# A loopback port nobody listens on (checked again by wait_listening: the pid must own it).
USED_PORTS=" "
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 30000))
        [[ $USED_PORTS == *" $port "* ]] && continue
        if [[ -z $(ss -Htan "sport = :$port" 2>/dev/null) ]]; then
            USED_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

pin() {
    # pin <core> cmd...: run on that core when PIN=1
    local core=$1
    shift
    if [[ $PIN == 1 ]]; then
        exec taskset -c "$core" "$@"
    else
        exec "$@"
    fi
}

# ----- what is needed --------------------------------------------------------------------------

need_packages=()
command -v nginx >/dev/null 2>&1 || need_packages+=(nginx)
command -v wrk >/dev/null 2>&1 || need_packages+=(wrk)
if ((${#need_packages[@]} > 0)); then
    log "nginx-compare: installing ${need_packages[*]} (apt-get)"
    if [[ $(id -u) == 0 ]]; then SUDO=(); else SUDO=(sudo); fi
    # policy: install only; the system nginx service is neither enabled by us nor used.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_packages[@]}" >&2 ||
        {
            "${SUDO[@]}" apt-get update >&2
            "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_packages[@]}" >&2
        }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || die "nginx not found"
for tool in wrk curl ss pgrep getconf; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
if [[ $PIN == 1 ]]; then
    command -v taskset >/dev/null 2>&1 || die "taskset is required for PIN=1 (util-linux)"
    ((CORES >= 2)) || die "PIN=1 needs at least 2 cores"
fi

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "nginx-compare: cargo build --release"
    (cd "$REPO" && cargo build --release --bin teamgate >&2)
fi
[[ -x $TEAMGATE_BIN ]] || die "$TEAMGATE_BIN is missing (cargo build --release)"

TMP=$(mktemp -d /tmp/teamgate-nginx-compare.XXXXXX)
chmod 755 "$TMP" # nginx workers (user nobody when started as root) may need to reach temp dirs

# ----- the stand-in vendor's answers -----------------------------------------------------------

# One Grafana TeamDTO (an older version's, with created/updated): about 320 bytes.
team_json() {
    local i=$1 uid avatar
    uid=$(printf 'ef%012x' $((i * 2654435761 % 281474976710655)))
    avatar=$(printf 'platform-team-%03d@example.com' "$i" | md5sum | cut -c1-32)
    printf '{"id":%d,"uid":"%s","orgId":1,"name":"Platform Team %03d","email":"platform-team-%03d@example.com","externalUID":"","isProvisioned":false,"avatarUrl":"/avatar/%s","memberCount":%d,"permission":0,"accessControl":null,"created":"2026-01-05T09:30:00Z","updated":"2026-02-11T14:05:00Z"}' \
        "$i" "$uid" "$i" "$i" "$avatar" $((i % 7 + 1))
}
STANDIN_DIR=$TMP/standin-root
mkdir -p "$STANDIN_DIR"
team_json 1 >"$STANDIN_DIR/team.json"
{
    printf '{"totalCount":200,"teams":['
    for ((i = 1; i <= 50; i++)); do
        ((i > 1)) && printf ','
        team_json "$i"
    done
    printf '],"page":1,"perPage":50}'
} >"$STANDIN_DIR/search.json"
chmod 644 "$STANDIN_DIR"/*.json
TEAM_BYTES=$(stat -c %s "$STANDIN_DIR/team.json")
SEARCH_BYTES=$(stat -c %s "$STANDIN_DIR/search.json")

# ----- configurations --------------------------------------------------------------------------

STANDIN_PORT=$(free_port)
PASS_PORT=$(free_port)
TG_OFF_PORT=$(free_port)
TG_ON_PORT=$(free_port)

nginx_common() {
    # $1: instance dir
    cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}

mkdir -p "$TMP/standin" "$TMP/passthrough"
# The team answer is short enough for `return` (a config token is at most 4 KiB); the search
# answer (~17 KB) is a file, served with open_file_cache so it is not reopened per request.
{
    nginx_common "$TMP/standin"
    cat <<EOF
http {
$(nginx_http_common "$TMP/standin")
    types { }
    default_type application/json;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 3600s;
    etag off;
    server {
        listen 127.0.0.1:$STANDIN_PORT;
        root $STANDIN_DIR;
        location ~ ^/api/teams/[0-9]+\$ {
            return 200 '$(cat "$STANDIN_DIR/team.json")';
        }
        location = /api/teams/search {
            try_files /search.json =500;
        }
        location / {
            return 404 '{"message":"Not found"}';
        }
    }
}
EOF
} >"$TMP/standin/nginx.conf"

{
    nginx_common "$TMP/passthrough"
    cat <<EOF
http {
$(nginx_http_common "$TMP/passthrough")
    upstream standin {
        server 127.0.0.1:$STANDIN_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PASS_PORT;
        location / {
            proxy_pass http://standin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer bench-credential";
        }
    }
}
EOF
} >"$TMP/passthrough/nginx.conf"

export TEAMGATE_BENCH_CREDENTIAL=bench-credential
for mode in off on; do
    if [[ $mode == on ]]; then enabled=true; else enabled=false; fi
    cat >"$TMP/teamgate-cache-$mode.toml" <<EOF
default_backend = "grafana"

[cache]
enabled = $enabled

[backends.grafana]
mapping = "$REPO/mappings/grafana.toml"
base_url = "http://127.0.0.1:$STANDIN_PORT"
credential_env = "TEAMGATE_BENCH_CREDENTIAL"
EOF
done

# ----- start -----------------------------------------------------------------------------------

for name in standin passthrough; do
    "$NGINX" -t -q -p "$TMP/$name/" -c "$TMP/$name/nginx.conf" -e "$TMP/$name/error.log" \
        2>"$TMP/$name-check.err" || die "nginx -t failed for $name: $(cat "$TMP/$name-check.err")"
done

start standin pin 1 "$NGINX" -p "$TMP/standin/" -c "$TMP/standin/nginx.conf" -e "$TMP/standin/error.log"
STANDIN_PID=$STARTED_PID
start nginx pin 0 "$NGINX" -p "$TMP/passthrough/" -c "$TMP/passthrough/nginx.conf" -e "$TMP/passthrough/error.log"
PASS_PID=$STARTED_PID
# Default log level: TEAMGATE_LOG is deliberately not set; stderr goes to a file we measure.
start teamgate-cache-off pin 0 env -u TEAMGATE_LOG \
    "$TEAMGATE_BIN" serve --config "$TMP/teamgate-cache-off.toml" --listen "127.0.0.1:$TG_OFF_PORT"
TG_OFF_PID=$STARTED_PID
start teamgate-cache-on pin 0 env -u TEAMGATE_LOG \
    "$TEAMGATE_BIN" serve --config "$TMP/teamgate-cache-on.toml" --listen "127.0.0.1:$TG_ON_PORT"
TG_ON_PID=$STARTED_PID

wait_listening "$STANDIN_PID" "$STANDIN_PORT" standin
wait_listening "$PASS_PID" "$PASS_PORT" nginx
wait_listening "$TG_OFF_PID" "$TG_OFF_PORT" teamgate-cache-off
wait_listening "$TG_ON_PID" "$TG_ON_PORT" teamgate-cache-on
for master in "$STANDIN_PID" "$PASS_PID"; do
    for w in $(pgrep -P "$master" || true); do CHILD_PIDS+=("$w"); done
done
read -r -a STANDIN_PIDS <<<"$STANDIN_PID $(pgrep -P "$STANDIN_PID" | tr '\n' ' ')"

# ----- check the answers before measuring ------------------------------------------------------

GET_VENDOR=/api/teams/1
LIST_VENDOR="/api/teams/search?page=1&perpage=50"
GET_CANON=/v1/teams/1
LIST_CANON="/v1/teams?limit=50"

# fetch <url> <name>: body to $TMP/check/<name>.body, headers to .headers; prints the status
mkdir -p "$TMP/check"
fetch() {
    curl -sS --max-time 5 -D "$TMP/check/$2.headers" -o "$TMP/check/$2.body" -w '%{http_code}' "$1" ||
        echo "000"
}
expect_200() {
    local status
    status=$(fetch "$1" "$2")
    [[ $status == 200 ]] || die "GET $1 answered $status, not 200: $(head -c 400 "$TMP/check/$2.body" 2>/dev/null)"
}
expect_body() {
    # expect_body <name> <fixed string>
    grep -qF -- "$2" "$TMP/check/$1.body" ||
        die "$1: the answer lacks $2: $(head -c 400 "$TMP/check/$1.body")"
}

for side in standin:$STANDIN_PORT nginx:$PASS_PORT; do
    name=${side%%:*}
    port=${side##*:}
    expect_200 "http://127.0.0.1:$port$GET_VENDOR" "$name-get"
    cmp -s "$TMP/check/$name-get.body" "$STANDIN_DIR/team.json" || die "$name: get_team body differs from the stand-in's"
    expect_200 "http://127.0.0.1:$port$LIST_VENDOR" "$name-list"
    cmp -s "$TMP/check/$name-list.body" "$STANDIN_DIR/search.json" || die "$name: search body differs from the stand-in's"
done
for mode in off on; do
    port=$TG_OFF_PORT
    [[ $mode == on ]] && port=$TG_ON_PORT
    name=teamgate-cache-$mode
    expect_200 "http://127.0.0.1:$port$GET_CANON" "$name-get"
    for s in '"id":"1"' '"name":"Platform Team 001"' '"email":"platform-team-001@example.com"' '"member_count":2' \
        '"backend":"grafana"'; do
        expect_body "$name-get" "$s"
    done
    # The default answer: canonical fields only (the vendor leftovers are `?include=vendor`).
    ! grep -qF '"vendor"' "$TMP/check/$name-get.body" || die "$name: a vendor object nobody asked for"
    expect_200 "http://127.0.0.1:$port$LIST_CANON" "$name-list"
    expect_body "$name-list" '"teams":['
    expect_body "$name-list" '"next_cursor":"'
    teams=$(grep -oF '"backend":"grafana"' "$TMP/check/$name-list.body" | wc -l)
    ((teams == 50)) || die "$name: list_teams answered $teams teams, not 50"
done
# the cache-on instance answers its second read from the cache
expect_200 "http://127.0.0.1:$TG_ON_PORT$GET_CANON" teamgate-cache-on-get2
grep -qi '^cache-status:.*hit' "$TMP/check/teamgate-cache-on-get2.headers" ||
    die "teamgate-cache-on: the second get_team was not a cache hit: $(cat "$TMP/check/teamgate-cache-on-get2.headers")"
if grep -qi '^cache-status:.*hit' "$TMP/check/teamgate-cache-off-get.headers"; then
    die "teamgate-cache-off answered from a cache"
fi
CANON_GET_BYTES=$(stat -c %s "$TMP/check/teamgate-cache-off-get.body")
CANON_LIST_BYTES=$(stat -c %s "$TMP/check/teamgate-cache-off-list.body")
log "nginx-compare: answers checked (vendor team $TEAM_BYTES B, search $SEARCH_BYTES B; canonical team $CANON_GET_BYTES B, list $CANON_LIST_BYTES B)"

# ----- measure ---------------------------------------------------------------------------------

SERVERS=(nginx teamgate-cache-off teamgate-cache-on)
OPS=(get_team list_teams)
# the pass-through's workers (worker_processes 1): counted with the master for CPU and RSS
read -r -a NGINX_WORKERS <<<"$(pgrep -P "$PASS_PID" | tr '\n' ' ')"
((${#NGINX_WORKERS[@]} > 0)) || die "the nginx pass-through has no worker"

server_pids() {
    case $1 in
    nginx) echo "$PASS_PID" "${NGINX_WORKERS[@]}" ;;
    teamgate-cache-off) echo "$TG_OFF_PID" ;;
    teamgate-cache-on) echo "$TG_ON_PID" ;;
    esac
}
server_url() {
    local server=$1 op=$2
    case $server/$op in
    nginx/get_team) echo "http://127.0.0.1:$PASS_PORT$GET_VENDOR" ;;
    nginx/list_teams) echo "http://127.0.0.1:$PASS_PORT$LIST_VENDOR" ;;
    teamgate-cache-off/get_team) echo "http://127.0.0.1:$TG_OFF_PORT$GET_CANON" ;;
    teamgate-cache-off/list_teams) echo "http://127.0.0.1:$TG_OFF_PORT$LIST_CANON" ;;
    teamgate-cache-on/get_team) echo "http://127.0.0.1:$TG_ON_PORT$GET_CANON" ;;
    teamgate-cache-on/list_teams) echo "http://127.0.0.1:$TG_ON_PORT$LIST_CANON" ;;
    esac
}
server_log() {
    case $1 in
    teamgate-cache-off) echo "$TMP/teamgate-cache-off.err" ;;
    teamgate-cache-on) echo "$TMP/teamgate-cache-on.err" ;;
    *) echo "" ;;
    esac
}
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        fields=$(sed 's/.*) //' "/proc/$pid/stat") || die "pid $pid is gone"
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}
status_sum() {
    # status_sum <field> pids...: sum of a /proc/<pid>/status field (VmRSS in kB, Threads)
    local field=$1 total=0 pid
    shift
    for pid in "$@"; do
        total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status")))
    done
    echo "$total"
}
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
# busy_ticks <cpu|cpu0|...>: user+nice+system+irq+softirq+steal of that line of /proc/stat
busy_ticks() { awk -v c="$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
idle_ticks() { awk -v c="$1" '$1 == c {print $5 + $6}' /proc/stat; }
# children_ticks: CPU ticks of this shell's waited-for children (wrk, through timeout), from
# /proc/$$/stat cutime + cstime (fields 16 and 17); read with a builtin, no child of its own
children_ticks() {
    local line fields
    read -r line <"/proc/$$/stat"
    read -r -a fields <<<"${line##*) }"
    echo $((fields[13] + fields[14]))
}
drop_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# run_wrk <seconds> <url> <outfile>: wrk on core 1, recorded by pid, bounded by timeout
run_wrk() {
    local seconds=$1 url=$2 out=$3 wpid
    pin 1 timeout --kill-after=5 $((seconds + 30)) \
        wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency "$url" >"$out" 2>&1 &
    wpid=$!
    PIDS+=("$wpid")
    if ! wait "$wpid"; then
        drop_pid "$wpid"
        die "wrk failed on $url: $(cat "$out")"
    fi
    drop_pid "$wpid"
}

mkdir -p "$TMP/wrk"
RAW=$TMP/raw.tsv
printf 'round\top\tserver\trps\tp50_ms\tp99_ms\trequests\tcpu_us_per_req\tcpu_pct\trss_kb\tthreads\tnon2xx\tsocket_errors\tlog_bytes\tcore0_other_pct\ttries\tcore1_other_pct\n' >"$RAW"

# busy_pct: how busy all cores are over 2 s, in percent (our servers are idle meanwhile)
busy_pct() {
    local b0 i0
    b0=$(busy_ticks cpu)
    i0=$(idle_ticks cpu)
    sleep 2
    awk -v b="$(($(busy_ticks cpu) - b0))" -v i="$(($(idle_ticks cpu) - i0))" 'BEGIN {printf "%.0f", (b + i > 0 ? 100 * b / (b + i) : 0)}'
}
QUIET_WAIT=${QUIET_WAIT:-120}
QUIET_BUSY=${QUIET_BUSY:-10}
QUIET_BUDGET=${QUIET_BUDGET:-1800}
RUN_TRIES=${RUN_TRIES:-3}
OTHER_MAX=${OTHER_MAX:-10}
WAITED=0 # seconds spent waiting for quiet or running again, all runs together
budget_left() { ((QUIET_WAIT > 0 && WAITED < QUIET_BUDGET)); }
wait_quiet() {
    budget_left || return 0
    local start=$SECONDS pct
    while :; do
        pct=$(busy_pct)
        ((pct < QUIET_BUSY)) && break
        if ((SECONDS - start >= QUIET_WAIT)) || ((WAITED + SECONDS - start >= QUIET_BUDGET)); then
            log "nginx-compare: WARNING: the machine is still ${pct}% busy; measuring anyway"
            break
        fi
        log "nginx-compare: the machine is ${pct}% busy (other work); waiting for it to be quiet"
    done
    WAITED=$((WAITED + SECONDS - start))
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_BEFORE="$(busy_pct)%"
log "nginx-compare: load average before: $LOAD_BEFORE; all cores busy over 2 s before the run: $BUSY_BEFORE"
log "nginx-compare: PIN=$PIN, $ROUNDS round(s) of ${DURATION}s, wrk -t1 -c$CONNECTIONS, warm-up ${WARMUP}s"

for op in "${OPS[@]}"; do
    for server in "${SERVERS[@]}"; do
        run_wrk "$WARMUP" "$(server_url "$server" "$op")" "$TMP/wrk/warmup-$op-$server.txt"
    done
done

for ((round = 1; round <= ROUNDS; round++)); do
    order=()
    for ((k = 0; k < ${#SERVERS[@]}; k++)); do
        order+=("${SERVERS[$(((k + round - 1) % ${#SERVERS[@]}))]}")
    done
    for op in "${OPS[@]}"; do
        for server in "${order[@]}"; do
            tries=0
            while :; do
                tries=$((tries + 1))
                wait_quiet
                run_start=$SECONDS
                read -r -a pids <<<"$(server_pids "$server")"
                logfile=$(server_log "$server")
                log0=0
                [[ -n $logfile ]] && log0=$(stat -c %s "$logfile")
                t0=$(cpu_ticks "${pids[@]}")
                s0=$(cpu_ticks "${STANDIN_PIDS[@]}")
                k0=$(children_ticks)
                d0=$(busy_ticks cpu1)
                c0=$(busy_ticks cpu0)
                w0=$(date +%s%N)
                out=$TMP/wrk/round$round-$op-$server.txt
                run_wrk "$DURATION" "$(server_url "$server" "$op")" "$out"
                k1=$(children_ticks)
                t1=$(cpu_ticks "${pids[@]}")
                s1=$(cpu_ticks "${STANDIN_PIDS[@]}")
                d1=$(busy_ticks cpu1)
                c1=$(busy_ticks cpu0)
                w1=$(date +%s%N)
                rss=$(status_sum VmRSS "${pids[@]}")
                threads=$(status_sum Threads "${pids[@]}")
                log_bytes=0
                [[ -n $logfile ]] && log_bytes=$(($(stat -c %s "$logfile") - log0))
                requests=$(awk '/ requests in / {print $1}' "$out")
                rps=$(awk '$1 == "Requests/sec:" {print $2}' "$out")
                p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
                p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
                non2xx=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$out")
                sockerr=$(awk '/Socket errors/ {n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n}' "$out")
                [[ -n $requests && -n $rps && $requests -gt 0 ]] || die "could not read wrk's output: $(cat "$out")"
                cpu_us=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
                # with PIN=1, core 0 time not spent by the server under test: other work on the machine
                # and core 1 time spent neither by wrk nor by the stand-in
                other0=-
                other1=-
                if [[ $PIN == 1 ]]; then
                    other0=$(awk -v c="$((c1 - c0 - (t1 - t0)))" -v hz="$CLK_TCK" -v ns="$((w1 - w0))" 'BEGIN {v = c / hz / (ns / 1e9) * 100; printf "%.0f", (v < 0 ? 0 : v)}')
                    other1=$(awk -v c="$((d1 - d0 - (s1 - s0) - (k1 - k0)))" -v hz="$CLK_TCK" -v ns="$((w1 - w0))" 'BEGIN {v = c / hz / (ns / 1e9) * 100; printf "%.0f", (v < 0 ? 0 : v)}')
                fi
                cpu_pct=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v ns="$((w1 - w0))" 'BEGIN {printf "%.0f", t / hz / (ns / 1e9) * 100}')
                if [[ $PIN == 1 ]] && ((tries < RUN_TRIES)) && ((other0 > OTHER_MAX || other1 > OTHER_MAX)) && budget_left; then
                    log "nginx-compare: round $round $op $server: other work took ${other0}% of core 0 and ${other1}% of core 1; running it again"
                    WAITED=$((WAITED + SECONDS - run_start))
                    continue
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$op" "$server" \
                    "$rps" "$p50" "$p99" "$requests" "$cpu_us" "$cpu_pct" "$rss" "$threads" \
                    "${non2xx:-0}" "${sockerr:-0}" "$log_bytes" "$other0" "$tries" "$other1" >>"$RAW"
                log "$(printf 'round %d %-10s %-19s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %7.1f CPU µs/req (%s%% of a core)  RSS %6d kB  %d threads  non-2xx %s  socket errors %s  log +%d B  other work: core 0 %s%%, core 1 %s%%' \
                    "$round" "$op" "$server" "$rps" "$p50" "$p99" "$cpu_us" "$cpu_pct" "$rss" "$threads" "${non2xx:-0}" "${sockerr:-0}" "$log_bytes" "$other0" "$other1")"
                if [[ ${non2xx:-0} != 0 || ${sockerr:-0} != 0 ]]; then
                    log "nginx-compare: WARNING: $server $op round $round: non-2xx ${non2xx:-0}, socket errors ${sockerr:-0}"
                fi
                break
            done
        done
    done
done

# ----- report ----------------------------------------------------------------------------------

# median of the numbers on stdin
median() {
    sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
# column <op> <server> <column number>: that column over the rounds
column() {
    awk -F'\t' -v op="$1" -v s="$2" -v c="$3" 'NR > 1 && $2 == op && $3 == s {print $c}' "$RAW"
}
# ratios <op> <server> <column number>: value / nginx's value of the same round, per round
ratios() {
    awk -F'\t' -v op="$1" -v s="$2" -v c="$3" '
        NR > 1 && $2 == op && $3 == "nginx" {base[$1] = $c}
        NR > 1 && $2 == op && $3 == s {val[$1] = $c}
        END {for (r in val) if (r in base && base[r] > 0) print val[r] / base[r]}' "$RAW"
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {printf f, v}'; }

{
    echo "# teamgate vs nginx, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $CORES cores, kernel $(uname -r)"
    echo "- teamgate $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock mappings 2>/dev/null || echo ' (with local changes to the code)'), release build; $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')"
    echo "- $ROUNDS interleaved round(s) of ${DURATION} s per server and operation (order rotated each round), wrk -t1 -c$CONNECTIONS --latency, after a ${WARMUP} s warm-up each"
    if [[ $PIN == 1 ]]; then
        echo "- pinned: the server under test alone on core 0 (taskset -c 0); wrk and the stand-in vendor on core 1"
    else
        echo "- not pinned: every process shares all cores"
    fi
    echo "- before the run: load average $LOAD_BEFORE; all cores $BUSY_BEFORE busy over 2 s"
    echo "- answers: vendor team $TEAM_BYTES B, vendor search of 50 $SEARCH_BYTES B; canonical team $CANON_GET_BYTES B, canonical list of 50 $CANON_LIST_BYTES B"
    echo
    echo "Medians over rounds; \"× nginx\" is the median of the per-round ratios to nginx in the same round."
    echo "CPU µs/req: utime+stime of the server's processes over the run / requests completed (cpu_pct below: of one core, over the run's wall time)."
    echo "RSS: VmRSS after the run (nginx: master + worker summed). Threads: of the server's processes."
    for op in "${OPS[@]}"; do
        echo
        case $op in
        get_team) echo "## get_team (nginx: GET $GET_VENDOR; teamgate: GET $GET_CANON)" ;;
        list_teams) echo "## list_teams of 50 teams (nginx: GET $LIST_VENDOR; teamgate: GET $LIST_CANON)" ;;
        esac
        echo
        echo "| server | threads | req/s | × nginx | p50 ms | × nginx | p99 ms | × nginx | CPU µs/req | × nginx | RSS MiB | × nginx | log B/req |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        for server in "${SERVERS[@]}"; do
            threads=$(column "$op" "$server" 11 | median)
            rps=$(column "$op" "$server" 4 | median)
            p50=$(column "$op" "$server" 5 | median)
            p99=$(column "$op" "$server" 6 | median)
            cpu=$(column "$op" "$server" 8 | median)
            rss=$(column "$op" "$server" 10 | median)
            rrps=$(ratios "$op" "$server" 4 | median)
            rp50=$(ratios "$op" "$server" 5 | median)
            rp99=$(ratios "$op" "$server" 6 | median)
            rcpu=$(ratios "$op" "$server" 8 | median)
            rrss=$(ratios "$op" "$server" 10 | median)
            if [[ $server == nginx ]]; then
                logpr="—"
            else
                logpr=$(awk -F'\t' -v op="$op" -v s="$server" 'NR > 1 && $2 == op && $3 == s {print $14 / $7}' "$RAW" | median)
                logpr=$(fmt "$logpr" '%.0f')
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$server" \
                "$(fmt "$threads" '%d')" "$(fmt "$rps" '%.0f')" "$(fmt "$rrps" '%.2f')" \
                "$(fmt "$p50" '%.2f')" "$(fmt "$rp50" '%.2f')" "$(fmt "$p99" '%.2f')" "$(fmt "$rp99" '%.2f')" \
                "$(fmt "$cpu" '%.1f')" "$(fmt "$rcpu" '%.2f')" "$(awk -v v="$rss" 'BEGIN {printf "%.1f", v / 1024}')" \
                "$(fmt "$rrss" '%.2f')" "$logpr"
        done
    done
    echo
    echo "Non-2xx answers: $(awk -F'\t' 'NR > 1 {n += $12} END {print n + 0}' "$RAW"); socket errors: $(awk -F'\t' 'NR > 1 {n += $13} END {print n + 0}' "$RAW") (all runs)."
    if [[ $PIN == 1 ]]; then
        echo "Core 0 time taken by other processes during the runs (not the server under test): median $(awk -F'\t' 'NR > 1 {print $15}' "$RAW" | median)%, max $(awk -F'\t' 'NR > 1 {print $15}' "$RAW" | sort -g | tail -1)%."
        echo "Core 1 time taken by other processes during the runs (neither wrk nor the stand-in): median $(awk -F'\t' 'NR > 1 {print $17}' "$RAW" | median)%, max $(awk -F'\t' 'NR > 1 {print $17}' "$RAW" | sort -g | tail -1)%."
        echo "Runs measured again because other work took more than $OTHER_MAX % of core 0 or core 1: $(awk -F'\t' 'NR > 1 {n += $16 - 1} END {print n + 0}' "$RAW"); time spent waiting for a quiet machine or running again: ${WAITED} s."
    fi
    echo "teamgate log growth: $(awk -F'\t' 'NR > 1 {n += $14} END {printf "%.1f MB", n / 1e6}' "$RAW") over all measured runs."
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo "| $(head -1 "$RAW" | sed 's/\t/ | /g') |"
    echo "|$(head -1 "$RAW" | awk -F'\t' '{for (i = 1; i <= NF; i++) printf "---|"}')"
    tail -n +2 "$RAW" | sed 's/\t/ | /g; s/^/| /; s/$/ |/'
    echo
    echo "</details>"
} >"$TMP/results.md"

mkdir -p "$(dirname "$RESULTS")"
cp "$TMP/results.md" "$RESULTS"
cat "$TMP/results.md"
log "nginx-compare: results written to $RESULTS"
