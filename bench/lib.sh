# bench/lib.sh — helpers shared by compare.sh and memory.sh (sourced, not run).
#
# Expects: $TMP (scratch dir), $REPO (repo root), $HERE (bench dir).
# Provides: need, free_port, start_server, wait_ping, stop_server, cleanup,
#           srv_ticks, rss_kb, info_field, build_loadgen, build_shoal, n,
#           start_dev, migrate_defaults, migrate_sample, cpu_snapshot,
#           sched_snapshot, sched_report.

BENCH_PIDS=""          # every server we started, killed by cleanup
TCK=$(getconf CLK_TCK)

need() { # need CMD... — fail early with a hint
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || {
      echo "missing '$c' (apt-get install redis-server redis-tools; go; python3)" >&2
      exit 2
    }
  done
}

# free_port — an unused loopback TCP port, chosen by the kernel (bind to 0).
# A different one each call (the previous ones are remembered) so two
# servers started back to back never get the same port.
USED_PORTS=" "
free_port() {
  local p i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    USED_PORTS="$USED_PORTS$p "
    echo "$p"
    return 0
  done
  echo "cannot find a free port" >&2
  return 1
}

# scale a request count by $SCALE (at least 1000, and a multiple of 16 so
# pipelined runs are whole batches)
n() { awk -v a="$1" -v s="${SCALE:-1}" 'BEGIN{x=int(a*s/16)*16; if(x<1024)x=1024; printf "%d", x}'; }

# start_server NAME CMDLINE PORT — CMDLINE may contain {port} and {dir} (a
# fresh directory $TMP/NAME.dir, for persistence files); it is run with
# `bash -c "exec CMDLINE"` so the pid we get is the server's own (needed for
# /proc/PID/stat). Sets SERVER_PID. Output goes to $TMP/NAME.log.
start_server() {
  local name=$1 cmd=$2 port=$3
  cmd=${cmd//\{port\}/$port}
  if [[ $cmd == *"{dir}"* ]]; then
    rm -rf "$TMP/$name.dir"; mkdir -p "$TMP/$name.dir"
    cmd=${cmd//\{dir\}/$TMP/$name.dir}
  fi
  echo "# start $name: $cmd" >&2
  bash -c "exec $cmd" >"$TMP/$name.log" 2>&1 &
  SERVER_PID=$!
  BENCH_PIDS="$BENCH_PIDS $SERVER_PID"
  wait_ping "$name" "$port" "$SERVER_PID"
}

# wait_ping NAME PORT PID — until `redis-cli -p PORT ping` answers PONG (15 s)
wait_ping() {
  local name=$1 port=$2 pid=$3 i
  for i in $(seq 1 150); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited before answering PING; its log:" >&2
      tail -20 "$TMP/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$name did not answer PING on port $port within 15 s; its log:" >&2
  tail -20 "$TMP/$name.log" >&2
  exit 1
}

stop_server() { # stop_server PID — TERM, then KILL after 5 s
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  BENCH_PIDS=${BENCH_PIDS// $pid/}
  return 0
}

# migrate_defaults — the migration benchmarks' data and workload, the
# same for migrate.sh and migrate-redis.sh: SCALE (QUICK=1: 0.1), VALUE,
# CONNS, CHUNK, BASE_CHUNKS, AFTER_CHUNKS, and N = 1M keys x SCALE.
migrate_defaults() {
  [ "${QUICK:-0}" = 1 ] && SCALE=${SCALE:-0.1}
  SCALE=${SCALE:-1}
  VALUE=${VALUE:-1000}
  CONNS=${CONNS:-8}
  CHUNK=${CHUNK:-2}
  BASE_CHUNKS=${BASE_CHUNKS:-5}
  AFTER_CHUNKS=${AFTER_CHUNKS:-3}
  N=$(awk -v s="$SCALE" 'BEGIN{x=int(1000000*s); if(x<1000)x=1000; print x}')
}

# migrate_sample PHASE ADDR [LOADGEN FLAGS] — one $CHUNK s sample of the
# migration benchmarks' workload: GET and SET at once, $CONNS connections
# each, -P 1, uniform over $N keys of $VALUE bytes (with $RATE set, at
# RATE requests/s per op, open loop). Appends a row per op
# to $ROWS: phase op ops_s p99_ms max_ms errors.
migrate_sample() {
  local ph=$1 addr=$2 op pids=""
  shift 2
  # RATE: an open-loop workload of RATE requests/s per op instead of a
  # closed loop (latency counted from when each request was due).
  [ "${RATE:-0}" != 0 ] && set -- "$@" -rate "$RATE"
  # LOADGEN_FLAGS: more loadgen flags (e.g. -slow 50ms); every sample's
  # output is kept in $TMP/samples.log (KEEP_TMP=1 to read it).
  # shellcheck disable=SC2086
  set -- "$@" ${LOADGEN_FLAGS:-}
  for op in get set; do
    "$LOADGEN" -addr "$addr" -op $op -r "$N" -size "$VALUE" -c "$CONNS" -P 1 -d "${CHUNK}s" "$@" >"$TMP/s.$op" 2>&1 &
    pids="$pids $!"
  done
  wait $pids
  for op in get set; do
    sed "s/^/$ph $op: /" "$TMP/s.$op" >>"$TMP/samples.log"
    tr ' ' '\n' <"$TMP/s.$op" | awk -F= -v ph="$ph" -v op=$op '
      $1=="ops_s"{o=$2} $1=="p99_ms"{p=$2} $1=="max_ms"{m=$2} $1=="errors"{e=$2}
      END{printf "%s\t%s\t%s\t%s\t%s\t%s\n", ph, op, o, p, m, e}' >>"$ROWS"
  done
}

# cpu_snapshot — "name=ticks ... idle=ticks" for each name=pid of
# $CPU_PIDS, and the machine's idle ticks
cpu_snapshot() {
  local kv; for kv in $CPU_PIDS; do printf "%s=%s " "${kv%%=*}" "$(srv_ticks "${kv#*=}")"; done
  awk '$1=="cpu"{printf "idle=%s", $5}' /proc/stat
}

# sched_snapshot NAME=URL... — each Shoal process's Go scheduler latency
# histogram (go_sched_latencies_seconds from its admin /metrics: how long
# runnable goroutines, event loops included, waited for a processor) as
# lines "NAME le count".
sched_snapshot() {
  local kv
  for kv in "$@"; do
    curl -s "${kv#*=}/metrics" | awk -v n="${kv%%=*}" '
      /^go_sched_latencies_seconds_bucket/ {match($0, /le="[^"]*"/); print n, substr($0, RSTART+4, RLENGTH-5), $NF}'
  done
}

# sched_report BEFORE AFTER — per process, the scheduling waits between
# two sched_snapshot outputs: how many, and how many over 1 ms and 10 ms
# (the histogram's bounds are 0.92 and 10.5 ms).
sched_report() {
  python3 - "$1" "$2" <<'PY'
import sys
def load(s):
    d = {}
    for line in s.splitlines():
        n, le, c = line.split()
        d.setdefault(n, {})[le] = float(c)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
out = []
for n in b:
    delta = {le: b[n][le] - a.get(n, {}).get(le, 0) for le in b[n]}
    tot = delta.get("+Inf", 0)
    def over(bound):
        le = min((x for x in delta if x != "+Inf" and float(x) >= bound), key=float)
        return tot - delta[le]
    out.append("%s %d (%.2f%% > 1 ms, %d > 10 ms)" % (n, tot, 100 * over(9e-4) / max(tot, 1), over(0.01)))
print("goroutine scheduling waits during the move (Go runtime): " + ", ".join(out))
PY
}

cleanup() {
  local p
  for p in $BENCH_PIDS; do stop_server "$p"; done
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}

# srv_ticks PID — utime+stime (all threads) in clock ticks; fields after the
# ")" that ends the comm field, so a name with spaces cannot shift them.
srv_ticks() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{t=$12+$13} END{print t+0}'
}

# sys_busy — busy ticks of the whole machine (all CPUs), from /proc/stat:
# user+nice+system+irq+softirq+steal
sys_busy() { awk '$1=="cpu"{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

# now_ticks — wall clock in clock ticks
now_ticks() { awk -v t="$(date +%s.%N)" -v k="$TCK" 'BEGIN{printf "%.0f", t*k}'; }

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }

# info_field PORT SECTION FIELD — a field of INFO, or NA
info_field() {
  local v
  v=$(redis-cli -h 127.0.0.1 -p "$1" info "$2" 2>/dev/null | tr -d '\r' | awk -F: -v f="$3" '$1==f{print $2}')
  echo "${v:-NA}"
}

build_loadgen() { # sets LOADGEN
  LOADGEN=${LOADGEN:-}
  if [ -z "$LOADGEN" ]; then
    LOADGEN=$TMP/loadgen
    (cd "$HERE/loadgen" && GOWORK=off go build -o "$LOADGEN" .) || { echo "cannot build bench/loadgen" >&2; exit 2; }
  fi
}

build_shoal() { # build_shoal — sets SHOAL_BIN if empty
  if [ -z "${SHOAL_BIN:-}" ]; then
    SHOAL_BIN=$TMP/shoal
    echo "# go build -o $SHOAL_BIN ./cmd/shoal" >&2
    (cd "$REPO" && go build -o "$SHOAL_BIN" ./cmd/shoal) || { echo "cannot build ./cmd/shoal (use -s BIN or SHOAL_CMD)" >&2; exit 2; }
  fi
}

# start_dev NAME ARGS... — `shoal dev ARGS` in $TMP/NAME (its output in
# $TMP/NAME.out), waited for until it prints ready (60 s); sets DEV_PID,
# DEV_OUT, DEV_NODES (RESP ports) and DEV_MANAGER (host:port). cleanup
# stops it with the servers.
DEV_PIDS=""
start_dev() {
  local name=$1 i; shift
  DEV_OUT=$TMP/$name.out
  "$SHOAL_BIN" dev --dir "$TMP/$name" --base-port 0 "$@" >"$DEV_OUT" 2>&1 &
  DEV_PID=$!
  DEV_PIDS="$DEV_PIDS $DEV_PID"
  BENCH_PIDS="$BENCH_PIDS $DEV_PID"
  for i in $(seq 1 600); do
    grep -q '^ready' "$DEV_OUT" && break
    kill -0 "$DEV_PID" 2>/dev/null || { cat "$DEV_OUT"; exit 1; }
    sleep 0.1
  done
  grep -q '^ready' "$DEV_OUT" || { echo "shoal dev not ready" >&2; cat "$DEV_OUT"; exit 1; }
  DEV_NODES=$(sed -n 's/^node: 127.0.0.1://p' "$DEV_OUT")
  DEV_MANAGER=$(sed -n 's|^manager: http://||p' "$DEV_OUT")
}
