#!/usr/bin/env bash
# bench/compare.sh — Shoal vs redis-server, side by side, interleaved rounds.
#
# Usage: bench/compare.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTFILE]
#   -r ROUNDS    rounds (default 3); medians across rounds are reported
#   -s SHOAL_BIN shoal binary (default: go build ./cmd/shoal into a temp dir)
#   -o OUTFILE   also write a markdown report there (raw rows: OUTFILE.tsv)
# Environment:
#   SCALE=F      multiply request counts / durations (default 1; 0.1 = smoke run)
#   ONLY=REGEX   run only scenarios whose name matches (grep -E)
#   SHOAL_CMD    command line of the "shoal" side, {port} = its port
#                (default: "SHOAL_BIN server --port {port} --bind 127.0.0.1");
#                e.g. SHOAL_CMD="redis-server --port {port} --save '' --appendonly no"
#                makes a redis-vs-redis run (ratios ~1.0: the noise floor)
#   REDIS_CMD    command line of the reference side (default below)
#   LOADGEN=path prebuilt bench/loadgen binary (default: built into a temp dir)
#   KEEP_TMP=1   keep the temp dir (server logs, raw output)
#
# Both servers run for the whole comparison on free loopback ports (state is
# kept between scenarios: sets run before gets so gets hit). Each round runs
# every scenario once on each server, interleaved per scenario, shoal first
# in odd rounds and redis first in even rounds (A B B A) to cancel drift.
#
# Scenarios (50 clients, keys over a random keyspace of 100,000, values 'x'):
#   redis-benchmark --csv -c 50 -r 100000 (single-threaded C client):
#     {set,get}_{3B,1K}_P{1,16}       -t set|get -d 3|1024
#     {incr,lpush,lpop,sadd,hset,zadd}_P{1,16}  -t NAME -d 3
#     mset10_P{1,16}                  -t mset (10 keys of 3 B per MSET)
#   bench/loadgen -proto resp, GOMAXPROCS=1, closed loop for 3 s x SCALE
#   (cheaper client: at P1 redis-benchmark saturates before the server does):
#     lg_{set,get}_3B_P{1,16}
# Per scenario: ops/s, p50/p99 latency (ms, from the client), and server CPU
# per operation (µs: utime+stime of the server process from /proc/PID/stat
# over the run / requests; 10 ms tick resolution, so small runs are coarse).
#
# Output: one line per scenario, medians across rounds:
#   scenario  shoal_ops_s  redis_ops_s  ratio  shoal_p99  redis_p99  shoal_cpu_us_op  redis_cpu_us_op
# ratio = shoal_ops_s / redis_ops_s. "ERR" = the scenario failed in every round
# (unknown command, crash...); a median over fewer rounds is marked with '*'.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=3
SHOAL_BIN=""
OUTFILE=""
while getopts "r:s:o:h" o; do
  case $o in
    r) ROUNDS=$OPTARG ;;
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
SCALE=${SCALE:-1}
ONLY=${ONLY:-.}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-compare.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
need redis-server redis-cli redis-benchmark python3 go /usr/bin/time

build_loadgen
if [ -z "${SHOAL_CMD:-}" ]; then
  build_shoal
  SHOAL_CMD="$SHOAL_BIN server --port {port} --bind 127.0.0.1"
fi
REDIS_CMD=${REDIS_CMD:-"redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no"}

P_SHOAL=$(free_port) || exit 1
P_REDIS=$(free_port) || exit 1
start_server shoal "$SHOAL_CMD" "$P_SHOAL"; PID_SHOAL=$SERVER_PID
start_server redis "$REDIS_CMD" "$P_REDIS"; PID_REDIS=$SERVER_PID
echo "# shoal: port $P_SHOAL pid $PID_SHOAL; redis: port $P_REDIS pid $PID_REDIS; rounds $ROUNDS; SCALE $SCALE" >&2

RAW=$TMP/raw.tsv
printf 'round\tscenario\tserver\ttool\tops_s\tp50_ms\tp99_ms\tcpu_us_op\tbg_pct\n' >"$RAW"
TIMEOUT=$(awk -v s="$SCALE" 'BEGIN{x=int(300*s); if(x<60)x=60; print x}')
LGDUR=$(awk -v s="$SCALE" 'BEGIN{printf "%.2fs", 3*s}')

port_of() { [ "$1" = shoal ] && echo "$P_SHOAL" || echo "$P_REDIS"; }
pid_of() { [ "$1" = shoal ] && echo "$PID_SHOAL" || echo "$PID_REDIS"; }

# Around each run: server ticks (T0/T1), machine busy ticks (B0/B1), wall
# ticks (W0/W1); the client's own CPU comes from /usr/bin/time in $TMP/time.
# bg = machine CPU used by anything but this server and this client during
# the run, in % of one core: other work on the box (builds, tests...) that
# makes the run noisy.
mark_start() { T0=$(srv_ticks "$1"); B0=$(sys_busy); W0=$(now_ticks); }
mark_end() { T1=$(srv_ticks "$1"); B1=$(sys_busy); W1=$(now_ticks); }

# record ROUND SCENARIO SERVER TOOL OPS_S P50 P99 OPS
record() {
  local r=$1 sc=$2 srv=$3 tool=$4 ops_s=$5 p50=$6 p99=$7 ops=$8 cpu=NA bg
  bg=$(awk -v t0="$T0" -v t1="$T1" -v b0="$B0" -v b1="$B1" -v w0="$W0" -v w1="$W1" -v k="$TCK" \
         -v f="$TMP/time" 'BEGIN{c=0; while((getline l < f)>0){n=split(l,a," "); if(n==3)c=(a[2]+a[3])*k}
           w=w1-w0; if(w<1)w=1; x=((b1-b0)-(t1-t0)-c)/w*100; if(x<0)x=0; printf "%.0f", x}')
  if [ "${ops:-0}" -gt 0 ] 2>/dev/null && [ "$ops_s" != NA ]; then
    cpu=$(awk -v a="$T0" -v b="$T1" -v k="$TCK" -v o="$ops" 'BEGIN{printf "%.2f", (b-a)/k*1e6/o}')
  else
    ops_s=NA p50=NA p99=NA
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$sc" "$srv" "$tool" "$ops_s" "$p50" "$p99" "$cpu" "$bg" >>"$RAW"
  printf '# round %s %-14s %-5s %10s ops/s  p50 %6s ms  p99 %6s ms  cpu %6s us/op  bg %3s%%\n' "$r" "$sc" "$srv" "$ops_s" "$p50" "$p99" "$cpu" "$bg" >&2
}

# rb ROUND SERVER SCENARIO NREQ redis-benchmark-args...
rb() {
  local r=$1 srv=$2 sc=$3 nreq=$4; shift 4
  local port pid line rps p50 p99
  port=$(port_of "$srv"); pid=$(pid_of "$srv")
  mark_start "$pid"
  /usr/bin/time -f "%e %U %S" -o "$TMP/time" \
    timeout "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -r 100000 -n "$nreq" --csv "$@" \
    </dev/null >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  mark_end "$pid"
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  line=$(grep -v '^"test"' "$TMP/out" | grep , | tail -1 | tr -d '"')
  rps=$(echo "$line" | awk -F, 'NF>=8{printf "%.0f", $(NF-6)}')
  p50=$(echo "$line" | awk -F, 'NF>=8{print $(NF-3)}')
  p99=$(echo "$line" | awk -F, 'NF>=8{print $(NF-1)}')
  if [ $rc -ne 0 ] || [ -z "$rps" ] || [ "$rps" = 0 ]; then
    echo "# $srv $sc failed (rc $rc): $(tr '\n' ' ' <"$TMP/err" | cut -c1-200)" >&2
    rps=NA nreq=0
  fi
  record "$r" "$sc" "$srv" redis-benchmark "$rps" "${p50:-NA}" "${p99:-NA}" "$nreq"
}

# lg ROUND SERVER SCENARIO loadgen-args...
lg() {
  local r=$1 srv=$2 sc=$3; shift 3
  local port pid line ops rps p50 p99 errs
  port=$(port_of "$srv"); pid=$(pid_of "$srv")
  mark_start "$pid"
  GOMAXPROCS=1 /usr/bin/time -f "%e %U %S" -o "$TMP/time" \
    timeout "$TIMEOUT" "$LOADGEN" -addr "127.0.0.1:$port" -proto resp -c 50 -r 100000 -d "$LGDUR" "$@" \
    </dev/null >"$TMP/out" 2>"$TMP/err"
  mark_end "$pid"
  line=$(tail -1 "$TMP/out")
  ops=$(echo "$line" | sed -n 's/.* ops=\([0-9]*\).*/\1/p')
  rps=$(echo "$line" | sed -n 's/.*ops_s=\([0-9]*\).*/\1/p')
  p50=$(echo "$line" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  p99=$(echo "$line" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  errs=$(echo "$line" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
  if [ "${errs:-1}" != 0 ] || [ -z "$ops" ] || [ "$ops" = 0 ]; then
    echo "# $srv $sc failed: $(head -c 200 "$TMP/err") $line" >&2
    rps=NA ops=0
  fi
  record "$r" "$sc" "$srv" loadgen "${rps:-NA}" "${p50:-NA}" "${p99:-NA}" "${ops:-0}"
}

# scenario table: NAME TOOL NREQ(before SCALE; "-" for loadgen) ARGS...
SCEN=$TMP/scenarios
: >"$SCEN"
add() { echo "$*" >>"$SCEN"; }
for P in 1 16; do
  if [ $P = 1 ]; then N=120000 N1K=120000 NM=50000; else N=1000000 N1K=600000 NM=200000; fi
  add set_3B_P$P rb "$N" -t set -d 3 -P $P
  add get_3B_P$P rb "$N" -t get -d 3 -P $P
  add set_1K_P$P rb "$N1K" -t set -d 1024 -P $P
  add get_1K_P$P rb "$N1K" -t get -d 1024 -P $P
  add incr_P$P rb "$N" -t incr -P $P
  add lpush_P$P rb "$N" -t lpush -d 3 -P $P
  add lpop_P$P rb "$N" -t lpop -d 3 -P $P
  add sadd_P$P rb "$N" -t sadd -P $P
  add hset_P$P rb "$N" -t hset -d 3 -P $P
  add zadd_P$P rb "$N" -t zadd -P $P
  add mset10_P$P rb "$NM" -t mset -d 3 -P $P
done
add lg_set_3B_P1 lg - -op set -size 3 -P 1
add lg_get_3B_P1 lg - -op get -P 1
add lg_set_3B_P16 lg - -op set -size 3 -P 16
add lg_get_3B_P16 lg - -op get -P 16

START=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then ORDER="shoal redis"; else ORDER="redis shoal"; fi
  while read -r -u 3 sc tool nreq args; do
    echo "$sc" | grep -Eq "$ONLY" || continue
    for srv in $ORDER; do
      # stop early if a server died: its numbers would be meaningless
      kill -0 "$(pid_of "$srv")" 2>/dev/null || { echo "$srv died; its log:" >&2; tail -20 "$TMP/$srv.log" >&2; exit 1; }
      # shellcheck disable=SC2086
      if [ "$tool" = rb ]; then rb "$r" "$srv" "$sc" "$(n "$nreq")" $args; else lg "$r" "$srv" "$sc" $args; fi
    done
  done 3<"$SCEN"
done
ELAPSED=$(($(date +%s) - START))

[ -n "$OUTFILE" ] && cp "$RAW" "$OUTFILE.tsv"
META="rounds=$ROUNDS SCALE=$SCALE elapsed=${ELAPSED}s cpus=$(nproc) $(redis-server --version | awk '{print $3}') shoal_cmd=\"$SHOAL_CMD\" commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none) date=$(date -u +%Y-%m-%dT%H:%MZ)"
python3 "$HERE/summarize.py" "$RAW" "$OUTFILE" "$META"
