#!/usr/bin/env bash
# bench/migrate-redis.sh — the peer of bench/migrate.sh: the same data and
# the same workload on a Redis Cluster of two masters, resharded by
# `redis-cli --cluster reshard` (MIGRATE of a batch of keys at a time,
# what a Redis Cluster operator runs). Its report has migrate.sh's format.
#
# Usage: bench/migrate-redis.sh [-o OUTFILE]
# Environment: QUICK=1 (SCALE=0.1, 4096 slots), SCALE=F (keys = 1M x F),
# VALUE=bytes (1000), CONNS (8), CHUNK (2), BASE_CHUNKS (5), AFTER_CHUNKS
# (3), NSLOTS=slots to move (16384; QUICK=1: 4096), PIPE=keys per MIGRATE
# (redis-cli's --cluster-pipeline, default 10), MOVE_ONLY=1 (no
# workload: the move alone), RATE=requests/s per op (0: closed
# loop, as fast as replies come), KEEP_TMP=1.
#
# 1. Two redis-server --cluster-enabled yes (no persistence); node 1 takes
#    all 16384 slots (CLUSTER ADDSLOTSRANGE), then meets node 2.
# 2. Load N keys of VALUE bytes into node 1 (loadgen -seq, -P 16).
# 3. Baseline: the workload of migrate.sh (GET and SET on random keys,
#    -P 1, CONNS connections each) with loadgen -cluster: a cluster client
#    straight to the nodes (following MOVED and ASK), no proxy.
# 4. The move: redis-cli --cluster reshard of NSLOTS slots from node 1 to
#    node 2, the workload sampled until it returns.
# 5. After, and checks: node 2 holds the moved keys, the two hold N.
# MB/s counts keys and values (N x (16 + VALUE)): Redis has no count of
# the bytes a reshard sends. There is no per-slot write pause to read from
# Redis: each MIGRATE blocks the source node, all its slots, until the
# target has the batch; the workload's slowest request shows it.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUTFILE=""
while getopts "o:h" o; do
  case $o in
    o) OUTFILE=$OPTARG ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
  esac
done
[ "${QUICK:-0}" = 1 ] && NSLOTS=${NSLOTS:-4096}
NSLOTS=${NSLOTS:-16384}
PIPE=${PIPE:-10}
TMP=$(mktemp -d)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
migrate_defaults
trap cleanup EXIT
need redis-server redis-cli python3
build_loadgen

# Redis Cluster's bus port is the port + 10000 unless set: both set, the
# bus on its own free port.
P1=$(free_port); P2=$(free_port); B1=$(free_port); B2=$(free_port)
RCONF='--cluster-enabled yes --cluster-config-file {dir}/nodes.conf --dir {dir} --save "" --appendonly no --bind 127.0.0.1 --protected-mode no'
start_server node1 "redis-server --port {port} --cluster-port $B1 $RCONF" "$P1"; PID1=$SERVER_PID
start_server node2 "redis-server --port {port} --cluster-port $B2 $RCONF" "$P2"; PID2=$SERVER_PID
rc() { redis-cli -h 127.0.0.1 -p "$@"; }
rc "$P1" cluster addslotsrange 0 16383 >/dev/null
rc "$P1" cluster meet 127.0.0.1 "$P2" "$B2" >/dev/null
for i in $(seq 1 200); do
  redis-cli --cluster check "127.0.0.1:$P1" >"$TMP/check.out" 2>&1 && grep -q "All 16384 slots covered" "$TMP/check.out" &&
    [ "$(rc "$P2" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p')" = ok ] && break
  sleep 0.1
done
[ "$(rc "$P2" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p')" = ok ] || { echo "cluster not ready:" >&2; cat "$TMP/check.out" >&2; exit 1; }
ID1=$(rc "$P1" cluster myid); ID2=$(rc "$P2" cluster myid)
echo "# $N keys x $VALUE B; node 1 :$P1, node 2 :$P2; reshard $NSLOTS slots, $PIPE keys per MIGRATE" >&2

"$LOADGEN" -addr "127.0.0.1:$P1" -op set -seq -n "$N" -size "$VALUE" -c 16 -P 16 >"$TMP/load.out" || { cat "$TMP/load.out"; exit 1; }
KEYS=$(rc "$P1" dbsize)
[ "$KEYS" = "$N" ] || { echo "node 1 holds $KEYS keys, want $N" >&2; exit 1; }

ROWS="$TMP/rows.tsv"
: >"$ROWS"
sample() { migrate_sample "$1" "127.0.0.1:$P1" -cluster; }
if [ "${MOVE_ONLY:-0}" = 1 ]; then # no workload: the move alone
  BASE_CHUNKS=0; AFTER_CHUNKS=0
  sample() { sleep 0.05; }
fi
CPU_PIDS="source=$PID1 target=$PID2"
B0=$(cpu_snapshot); tb0=$(date +%s.%N)
for i in $(seq 1 "$BASE_CHUNKS"); do sample base; done
B1=$(cpu_snapshot); tb1=$(date +%s.%N)
CPU0=$(cpu_snapshot)
t0=$(date +%s.%N)
# The reshard's own CPU (redis-cli does the GETKEYSINSLOT / MIGRATE loop):
# its rusage, printed by a python parent when it ends.
( python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"reshard_cpu_s={u.ru_utime + u.ru_stime:.2f}", file=sys.stderr)
sys.exit(r)' redis-cli --cluster reshard "127.0.0.1:$P1" --cluster-from "$ID1" --cluster-to "$ID2" \
    --cluster-slots "$NSLOTS" --cluster-yes --cluster-pipeline "$PIPE" >"$TMP/reshard.out" 2>"$TMP/reshard.err"
  rc=$?; date +%s.%N >"$TMP/t1"; exit $rc ) &
RESHARD=$!
while kill -0 $RESHARD 2>/dev/null; do sample move; done
wait $RESHARD || { echo "reshard failed:" >&2; tail -5 "$TMP/reshard.out" "$TMP/reshard.err" >&2; exit 1; }
t1=$(cat "$TMP/t1")
CPU1=$(cpu_snapshot)
LEFT=$(rc "$P1" dbsize); GOT=$(rc "$P2" dbsize)
[ $((LEFT + GOT)) = "$N" ] && [ "$GOT" -gt 0 ] || { echo "after the move: node 2 $GOT keys, node 1 $LEFT, want $N in all" >&2; exit 1; }
if [ "$NSLOTS" = 16384 ] && [ "$LEFT" != 0 ]; then echo "node 1 still holds $LEFT keys" >&2; exit 1; fi
for i in $(seq 1 "$AFTER_CHUNKS"); do sample after; done
RCPU=$(sed -n 's/^reshard_cpu_s=//p' "$TMP/reshard.err")
secs=$(python3 -c "print(f'{$t1 - $t0:.6f}')")
python3 "$HERE/migrate_report.py" rows="$ROWS" out="${OUTFILE:-}" t0="$t0" t1="$t1" bytes=$((GOT * (16 + VALUE))) \
  what="$GOT of $N keys x $VALUE B moved node 1 -> 2 ($NSLOTS slots, redis-cli --cluster reshard, $PIPE keys per MIGRATE; redis-cli CPU $(python3 -c "print(f'{$RCPU / $secs:.2f}')") cores)" \
  keys="$GOT" slots="$NSLOTS" tck="$TCK" base0="$B0" base1="$B1" cpu0="$CPU0" cpu1="$CPU1" tb0="$tb0" tb1="$tb1"
