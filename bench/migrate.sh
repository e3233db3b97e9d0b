#!/usr/bin/env bash
# bench/migrate.sh — slot migration: how fast a shard's data moves to
# another shard, what a concurrent workload sees meanwhile, and how long
# each slot's writes pause at its cutover.
#
# Usage: bench/migrate.sh [-s SHOAL_BIN] [-o OUTFILE]
# Environment: QUICK=1 (SCALE=0.1), SCALE=F (keys = 1M x F), VALUE=bytes
# (1000), CONNS=workload connections per op (8), CHUNK=seconds per
# workload sample (2), BASE_CHUNKS=baseline samples (5), AFTER_CHUNKS=
# samples once the move is over (3), MIGRATOR=standalone|builtin
# (standalone: the manager runs with --migrator=false and a `shoal
# migrator` process drives the moves), BPS=migrate-max-bytes-per-sec on
# the source (0: unlimited), SLOTS=the slots to move (0-16383: all;
# QUICK=1: 0-4095, a quarter of the keys), MOVE_ONLY=1 (no workload at
# all: the move alone on the machine), MIGRATOR_LOGLEVEL=debug (each
# cutover's fence, catch-up, commit and push times in migrator.log, with
# KEEP_TMP=1), RATE=requests/s per op (0: closed
# loop, as fast as replies come), LOADGEN_FLAGS=more loadgen flags
# (-slow 40ms: each request slower than that, in $TMP/samples.log),
# DIRECT=1 (the workload as a cluster client straight to the nodes, no
# proxy), KEEP_TMP=1.
#
# 1. shoal dev --shards 1 --replicas 0 --standby 1 --appendonly=false
#    --memcached=false; `shoal ctl add-shard --no-rebalance` makes shard 2
#    of the standby node, owning no slot. All 16384 slots are shard 1's.
# 2. Load N keys of VALUE bytes through the proxy (loadgen -seq, -P 16):
#    all land on shard 1.
# 3. Baseline: BASE_CHUNKS samples of CHUNK s of the workload, GET and SET
#    on uniformly random keys of the N (two loadgen processes at once,
#    CONNS connections each, -P 1) through the proxy.
# 4. The move: `shoal ctl migrate 0-16383 --to 2` (waits until every slot
#    is shard 2's); the same workload samples run until it returns.
#    Reported: total time, MB/s (the source's migrate_sent_bytes over the
#    time), keys/s, the workload's ops/s and p99 during the move against
#    the baseline, client errors, and the longest per-slot write pause at
#    cutover (INFO cluster cluster_cutover_pause_max_ms on both nodes:
#    from the map that fences the slot to the one that flips it).
# 5. After: AFTER_CHUNKS samples of the same workload once it is over.
# 6. Checks: shard 2 holds N keys, shard 1 none.
# Targets: >= 100 MB/s; workload ops/s during the move >= 80% of the
# baseline; longest per-slot write pause <= 50 ms.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHOAL_BIN=${SHOAL_BIN:-}
OUTFILE=""
while getopts "s:o:h" o; do
  case $o in
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    *) sed -n '2,40p' "$0"; exit 2 ;;
  esac
done
[ "${QUICK:-0}" = 1 ] && SLOTS=${SLOTS:-0-4095}
SLOTS=${SLOTS:-0-16383}
MIGRATOR=${MIGRATOR:-standalone}
BPS=${BPS:-0}
TMP=$(mktemp -d)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
migrate_defaults
DEV_PID=""; MIG_PID=""
trap 'cleanup; [ -n "$MIG_PID" ] && kill $MIG_PID 2>/dev/null; [ -n "$DEV_PID" ] && kill $DEV_PID 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"' EXIT
need redis-cli python3
build_shoal
build_loadgen

mflags=""
[ "$MIGRATOR" = standalone ] && mflags="--migrator=false"
start_dev dev --shards 1 --replicas 0 --standby 1 --memcached=false --appendonly=false --manager-flags "$mflags"
MGR=$DEV_MANAGER
PROXY=$(sed -n 's/^proxy-resp: //p' "$TMP/dev.out")
SRC=$(sed -n 's/^node: 127.0.0.1://p' "$TMP/dev.out" | head -1)
DST=$(sed -n 's/^standby: 127.0.0.1://p' "$TMP/dev.out" | head -1)
ctl() { "$SHOAL_BIN" ctl --manager "$MGR" "$@"; }
if [ "$MIGRATOR" = standalone ]; then
  "$SHOAL_BIN" migrator --manager "$MGR" --id bench-migrator --loglevel "${MIGRATOR_LOGLEVEL:-info}" >"$TMP/migrator.log" 2>&1 &
  MIG_PID=$!
fi
for i in $(seq 1 100); do
  ctl add-shard --no-rebalance >"$TMP/add-shard.out" 2>&1 && break
  sleep 0.2 # the standby node registers with its first heartbeat
done
ctl status --json | python3 -c '
import json,sys; s=json.load(sys.stdin)
assert len(s["shards"]) == 2 and s["shards"][1]["slots"] == 0, s["shards"]' || { echo "shard 2 not made" >&2; cat "$TMP/add-shard.out"; exit 1; }
[ "$BPS" != 0 ] && redis-cli -p "$SRC" config set migrate-max-bytes-per-sec "$BPS" >/dev/null
echo "# $N keys x $VALUE B; source :$SRC, target :$DST, proxy $PROXY, migrator $MIGRATOR" >&2

"$LOADGEN" -addr "$PROXY" -op set -seq -n "$N" -size "$VALUE" -c 16 -P 16 >"$TMP/load.out" || { cat "$TMP/load.out"; exit 1; }
KEYS=$(redis-cli -p "$SRC" dbsize)
[ "$KEYS" = "$N" ] || { echo "shard 1 holds $KEYS keys, want $N" >&2; exit 1; }

ROWS="$TMP/rows.tsv"
: >"$ROWS"
sample() { migrate_sample "$1" "$PROXY"; }
# DIRECT=1: the workload skips the proxy, a cluster client straight to
# the nodes (loadgen -cluster, as bench/migrate-redis.sh runs it): which
# of a move's stalls are the proxy's.
[ "${DIRECT:-0}" = 1 ] && sample() { migrate_sample "$1" "127.0.0.1:$SRC" -cluster; }
if [ "${MOVE_ONLY:-0}" = 1 ]; then # no workload: the move alone
  BASE_CHUNKS=0; AFTER_CHUNKS=0
  sample() { sleep 0.05; }
fi
# CPU of each process, and the machine's idle time, during the baseline
# and during the move (where the move's cost goes).
pid_of() { pgrep -f -- "$1" | head -1; }
SRC_PID=$(info_field "$SRC" server process_id); DST_PID=$(info_field "$DST" server process_id)
MGR_PID=$(pid_of "manager .*--http-addr $MGR"); PROXY_PID=$(pid_of "proxy --manager .* --port ${PROXY##*:} ")
CPU_PIDS="source=$SRC_PID target=$DST_PID manager=$MGR_PID proxy=$PROXY_PID"
[ -n "$MIG_PID" ] && CPU_PIDS="$CPU_PIDS migrator=$MIG_PID"
# Go scheduler latencies (sched_snapshot): node-admin lines come in the
# order of the node: and standby: lines, the source's first.
ADM=$(sed -n 's/^node-admin: //p' "$TMP/dev.out")
SCHED_URLS="source=$(echo "$ADM" | sed -n 1p) target=$(echo "$ADM" | sed -n 2p) proxy=$(sed -n 's/^proxy-admin: //p' "$TMP/dev.out")"
B0=$(cpu_snapshot); tb0=$(date +%s.%N)
for i in $(seq 1 "$BASE_CHUNKS"); do sample base; done
B1=$(cpu_snapshot); tb1=$(date +%s.%N)
redis-cli -p "$SRC" config resetstat >/dev/null
redis-cli -p "$DST" config resetstat >/dev/null
SENT0=$(info_field "$SRC" replication migrate_sent_bytes)
E0=$(info_field "$SRC" cluster cluster_map_epoch)
CPU0=$(cpu_snapshot)
# shellcheck disable=SC2086
S0=$(sched_snapshot $SCHED_URLS)
t0=$(date +%s.%N)
# t1 is when ctl returns (not when the workload sample running then ends)
( ctl migrate $SLOTS --to 2 --timeout 60m >"$TMP/migrate.out" 2>&1; rc=$?; date +%s.%N >"$TMP/t1"; exit $rc ) &
CTL=$!
while kill -0 $CTL 2>/dev/null; do sample move; done
wait $CTL || { echo "ctl migrate failed:" >&2; tail -5 "$TMP/migrate.out" >&2; exit 1; }
t1=$(cat "$TMP/t1")
CPU1=$(cpu_snapshot)
# shellcheck disable=SC2086
S1=$(sched_snapshot $SCHED_URLS)
SENT1=$(info_field "$SRC" replication migrate_sent_bytes)
E1=$(info_field "$SRC" cluster cluster_map_epoch)
PSRC=$(info_field "$SRC" cluster cluster_cutover_pause_max_ms)
PDST=$(info_field "$DST" cluster cluster_cutover_pause_max_ms)
NSRC=$(info_field "$SRC" cluster cluster_cutover_pauses)
# The source drops a moved slot's keys just after the flip.
for i in $(seq 1 100); do
  LEFT=$(redis-cli -p "$SRC" dbsize); GOT=$(redis-cli -p "$DST" dbsize)
  [ $((LEFT + GOT)) = "$N" ] && break; sleep 0.1
done
[ $((LEFT + GOT)) = "$N" ] && [ "$GOT" -gt 0 ] || { echo "after the move: target $GOT keys, source $LEFT, want $N in all" >&2; exit 1; }
if [ "$SLOTS" = 0-16383 ] && [ "$LEFT" != 0 ]; then echo "source still holds $LEFT keys" >&2; exit 1; fi
# After: the same workload once the move is over (QUICK: the slots split
# 3:1 between the shards; a whole move: all on shard 2 again).
for i in $(seq 1 "$AFTER_CHUNKS"); do sample after; done
NSLOTS=$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][1]["slots"])')

python3 "$HERE/migrate_report.py" rows="$ROWS" out="${OUTFILE:-}" t0="$t0" t1="$t1" bytes=$((SENT1 - SENT0)) \
  what="$GOT of $N keys x $VALUE B moved shard 1 -> 2 ($NSLOTS slots, migrator: $MIGRATOR)" keys="$GOT" slots="$NSLOTS" \
  pause="$(python3 -c "print(max($PSRC, $PDST))")" pausenote=" (source $PSRC, target $PDST; $NSRC slots timed on the source)" \
  note="cluster map epochs during the move: $((E1 - E0))
$(sched_report "$S0" "$S1")" tck="$TCK" base0="$B0" base1="$B1" cpu0="$CPU0" cpu1="$CPU1" tb0="$tb0" tb1="$tb1"
