#!/usr/bin/env bash
# bench/compare-mc.sh — Shoal's memcached port vs memcached, side by side.
#
# Usage: bench/compare-mc.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTFILE]
#   -r ROUNDS    rounds (default 3); medians across rounds are reported
#   -s SHOAL_BIN shoal binary (default: go build ./cmd/shoal into a temp dir)
#   -o OUTFILE   also write a markdown report there (raw rows: OUTFILE.tsv)
# Environment: SCALE=F (durations x F), ONLY=REGEX, LOADGEN=path, KEEP_TMP=1,
#   MEMCACHED_CMD (default: memcached -t 2 -p {port} -U 0 -m 1024 -l 127.0.0.1)
#
# Scenarios (bench/loadgen -proto mc, GOMAXPROCS=1, 50 connections, closed
# loop for 3 s x SCALE, keys over a random keyspace of 100,000):
#   mc_{set,get}_{100B,1K}_P{1,16}
# Each value size is loaded first (sequential sets of every key), so gets hit
# (~100%). Rounds are interleaved per scenario, shoal first in odd rounds.
# Output as compare.sh (the "redis" columns are memcached):
#   scenario shoal_ops_s memcached_ops_s ratio shoal_p99 memcached_p99 cpu...
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
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
SCALE=${SCALE:-1}
ONLY=${ONLY:-.}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-compare-mc.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
need memcached redis-cli python3 go /usr/bin/time

build_loadgen
build_shoal
P_SHOAL=$(free_port) || exit 1
P_SHOAL_MC=$(free_port) || exit 1
P_MC=$(free_port) || exit 1
MC_USER=""
[ "$(id -u)" = 0 ] && MC_USER="-u nobody"
MEMCACHED_CMD=${MEMCACHED_CMD:-"memcached $MC_USER -t 2 -p {port} -U 0 -m 1024 -l 127.0.0.1"}
start_server shoal "$SHOAL_BIN server --port $P_SHOAL --bind 127.0.0.1 --memcached-port $P_SHOAL_MC" "$P_SHOAL"
PID_SHOAL=$SERVER_PID
cmd=${MEMCACHED_CMD//\{port\}/$P_MC}
bash -c "exec $cmd" >"$TMP/memcached.log" 2>&1 &
PID_MC=$!
BENCH_PIDS="$BENCH_PIDS $PID_MC"
for i in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$P_MC)).close()" 2>/dev/null && break
  kill -0 $PID_MC 2>/dev/null || { echo "memcached exited:" >&2; cat "$TMP/memcached.log" >&2; exit 1; }
  sleep 0.1
done
echo "# shoal: mc port $P_SHOAL_MC pid $PID_SHOAL; memcached: port $P_MC pid $PID_MC; rounds $ROUNDS; SCALE $SCALE" >&2

RAW=$TMP/raw.tsv
printf 'round\tscenario\tserver\ttool\tops_s\tp50_ms\tp99_ms\tcpu_us_op\tbg_pct\n' >"$RAW"
LGDUR=$(awk -v s="$SCALE" 'BEGIN{printf "%.2fs", 3*s}')
port_of() { [ "$1" = shoal ] && echo "$P_SHOAL_MC" || echo "$P_MC"; }
pid_of() { [ "$1" = shoal ] && echo "$PID_SHOAL" || echo "$PID_MC"; }

lg() { # lg ROUND SERVER SCENARIO loadgen-args...
  local r=$1 srv=$2 sc=$3; shift 3
  local port pid line ops rps p50 p99 errs cpu
  port=$(port_of "$srv"); pid=$(pid_of "$srv")
  T0=$(srv_ticks "$pid")
  GOMAXPROCS=1 timeout 120 "$LOADGEN" -addr "127.0.0.1:$port" -proto mc -c 50 -r 100000 -d "$LGDUR" "$@" \
    </dev/null >"$TMP/out" 2>"$TMP/err"
  T1=$(srv_ticks "$pid")
  line=$(tail -1 "$TMP/out")
  ops=$(echo "$line" | sed -n 's/.* ops=\([0-9]*\).*/\1/p')
  rps=$(echo "$line" | sed -n 's/.*ops_s=\([0-9]*\).*/\1/p')
  p50=$(echo "$line" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')
  p99=$(echo "$line" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
  errs=$(echo "$line" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
  cpu=NA
  if [ "${errs:-1}" != 0 ] || [ -z "$ops" ] || [ "$ops" = 0 ]; then
    echo "# $srv $sc failed: $(head -c 200 "$TMP/err") $line" >&2
    rps=NA p50=NA p99=NA
  else
    cpu=$(awk -v a="$T0" -v b="$T1" -v k="$TCK" -v o="$ops" 'BEGIN{printf "%.2f", (b-a)/k*1e6/o}')
  fi
  printf '%s\t%s\t%s\tloadgen\t%s\t%s\t%s\t%s\tNA\n' "$r" "$sc" "$srv" "${rps:-NA}" "${p50:-NA}" "${p99:-NA}" "$cpu" >>"$RAW"
  printf '# round %s %-16s %-5s %10s ops/s  p50 %6s ms  p99 %6s ms  cpu %6s us/op\n' "$r" "$sc" "$srv" "$rps" "$p50" "$p99" "$cpu" >&2
}

load() { # load SERVER SIZE — every key of the keyspace, sequentially
  GOMAXPROCS=1 "$LOADGEN" -addr "127.0.0.1:$(port_of "$1")" -proto mc -op set -seq -n 100000 -c 50 -P 16 -size "$2" >/dev/null
}

SCEN=$TMP/scenarios
: >"$SCEN"
for size in 100 1024; do
  lbl=100B; [ $size = 1024 ] && lbl=1K
  for P in 1 16; do
    echo "mc_set_${lbl}_P$P $size -op set -size $size -P $P" >>"$SCEN"
    echo "mc_get_${lbl}_P$P $size -op get -P $P" >>"$SCEN"
  done
done

START=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then ORDER="shoal redis"; else ORDER="redis shoal"; fi
  loaded=""
  while read -r -u 3 sc size args; do
    echo "$sc" | grep -Eq "$ONLY" || continue
    for srv in $ORDER; do
      kill -0 "$(pid_of "$srv")" 2>/dev/null || { echo "$srv died" >&2; exit 1; }
      if [ "$loaded" != "$size" ]; then load shoal "$size"; load redis "$size"; loaded=$size; fi
      # shellcheck disable=SC2086
      lg "$r" "$srv" "$sc" $args
    done
  done 3<"$SCEN"
done
ELAPSED=$(($(date +%s) - START))
[ -n "$OUTFILE" ] && cp "$RAW" "$OUTFILE.tsv"
META="memcached comparison (redis columns = memcached) rounds=$ROUNDS SCALE=$SCALE elapsed=${ELAPSED}s cpus=$(nproc) $(memcached -V) commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none)"
python3 "$HERE/summarize.py" "$RAW" "$OUTFILE" "$META"
