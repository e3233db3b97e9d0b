#!/usr/bin/env bash
# bench/scaleout.sh — automatic scale-out with real processes: a load
# increase through the proxy makes the autoscaler take a standby node,
# form a shard and move slots onto it. Reports how long until the new
# shard serves traffic and until the rebalance ends, and the workload's
# throughput and p99 before, during and after.
#
# Usage: bench/scaleout.sh [-s SHOAL_BIN] [-o OUTFILE]
# Environment: KEYS (100000) keys of VALUE (100) bytes; LOW and HIGH
# (2000 and 16000): the workload's requests/s before and after the
# increase (GET and SET half each, loadgen -rate, CONNS=8 connections
# per op, -P 1, latency counted from when each request was due); OUT
# (4000): --scale-out-ops, the mean ops/s per shard above which the
# autoscaler scales out (between LOW/2 and HIGH/2); SUSTAIN (5): seconds
# the threshold must be passed; LOW_S (10): seconds of the low load;
# AFTER_S (10): seconds of high load measured after the rebalance;
# CHUNK (1): seconds per sample; MAX_S (600): give up after; KEEP_TMP=1.
#
# 1. shoal dev --shards 2 --replicas 0 --standby 1 --autoscale, the
#    manager with --scale-out-ops OUT --autoscale-sustain SUSTAIN (scale-in
#    and load rebalancing off, so the only action is the scale-out).
# 2. KEYS keys loaded through the proxy; LOW_S seconds at LOW req/s.
# 3. At t=0 the load becomes HIGH; samples of CHUNK seconds until shard 3
#    exists, owns slots, and the autoscaler has nothing in flight; then
#    AFTER_S more seconds.
# Reported: seconds from the increase to the scale-out decision, to the
# new shard's first slot (it serves traffic), to the end of the
# rebalance; ops/s and p99 of GET and SET in each phase (low, high before
# the new shard, during the moves, after); errors seen by the clients;
# and checks that every key is still there.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHOAL_BIN=${SHOAL_BIN:-}
OUTFILE=""
while getopts "s:o:h" o; do
  case $o in
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    *) sed -n '2,29p' "$0"; exit 2 ;;
  esac
done
KEYS=${KEYS:-100000}
VALUE=${VALUE:-100}
LOW=${LOW:-2000}
HIGH=${HIGH:-16000}
OUT=${OUT:-4000}
SUSTAIN=${SUSTAIN:-5}
LOW_S=${LOW_S:-10}
AFTER_S=${AFTER_S:-10}
CHUNK=${CHUNK:-1}
CONNS=${CONNS:-8}
MAX_S=${MAX_S:-600}
TMP=$(mktemp -d)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
DEV_PID=""
trap 'cleanup; [ -n "$DEV_PID" ] && kill $DEV_PID 2>/dev/null; wait 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"' EXIT
need redis-cli python3
build_shoal
build_loadgen

start_dev dev --shards 2 --replicas 0 --standby 1 --memcached=false --appendonly=false --autoscale \
  --manager-flags "--scale-out-ops $OUT --autoscale-sustain ${SUSTAIN}s --scale-in-ops 0 --autoscale-scale-in=false --autoscale-rebalance=false"
MGR=$DEV_MANAGER
PROXY=$(sed -n 's/^proxy-resp: //p' "$TMP/dev.out")
ctl() { "$SHOAL_BIN" ctl --manager "$MGR" "$@"; }
# the standby node registers with its first heartbeat
for i in $(seq 1 100); do
  [ "$(ctl status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["standby"]))')" -ge 1 ] && break
  sleep 0.1
done
echo "# $KEYS keys x $VALUE B; load $LOW -> $HIGH req/s through $PROXY; scale-out above $OUT ops/s per shard for ${SUSTAIN}s" >&2
"$LOADGEN" -addr "$PROXY" -op set -seq -n "$KEYS" -size "$VALUE" -c 16 -P 16 >"$TMP/load.out" || { cat "$TMP/load.out"; exit 1; }

# state — "shards new_shard_slots in_flight" from the manager
state() {
  ctl status --json 2>/dev/null | python3 -c '
import json,sys
s=json.load(sys.stdin)
sh=s["shards"]
new=[x["slots"] for x in sh if x["id"]>2]
print(len(sh), new[0] if new else 0, 1 if s["autoscale"].get("in_flight") else 0)' 2>/dev/null || echo "NA NA NA"
}
ROWS="$TMP/rows.tsv"
: >"$ROWS"
T0=""
# sample PHASE RATE — one CHUNK of GET and SET (RATE/2 each); a row:
# t phase get_ops get_p99 set_ops set_p99 errors shards new_slots in_flight
sample() {
  local op pids="" t
  t=$(date +%s.%N)
  for op in get set; do
    "$LOADGEN" -addr "$PROXY" -op $op -r "$KEYS" -size "$VALUE" -c "$CONNS" -P 1 -rate "$(($2 / 2))" -d "${CHUNK}s" >"$TMP/s.$op" 2>&1 &
    pids="$pids $!"
  done
  wait $pids
  kv() { tr ' ' '\n' <"$TMP/s.$1" | awk -F= -v k="$2" '$1==k{v=$2} END{print v==""?0:v}'; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(awk -v a="$t" -v b="${T0:-$t}" 'BEGIN{printf "%.1f", a-b}')" "$1" \
    "$(kv get ops_s)" "$(kv get p99_ms)" "$(kv set ops_s)" "$(kv set p99_ms)" \
    "$(( $(kv get errors) + $(kv set errors) ))" "$(state | tr ' ' '\t')" >>"$ROWS"
  tail -1 "$ROWS" | sed 's/^/# /' >&2
}
end=$(( $(date +%s) + LOW_S ))
while [ "$(date +%s)" -lt "$end" ]; do sample low "$LOW"; done
T0=$(date +%s.%N)
phase=high
while :; do
  sample "$phase" "$HIGH"
  read -r nsh nslots infl <<<"$(tail -1 "$ROWS" | cut -f8-10)"
  [ "$phase" = high ] && [ "$nslots" != NA ] && [ "$nslots" -gt 0 ] && phase=moving
  [ "$phase" = moving ] && [ "$infl" = 0 ] && break
  if [ "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print int(a-b)}')" -gt "$MAX_S" ]; then
    echo "no scale-out within $MAX_S s" >&2; ctl autoscale status >&2; exit 1
  fi
done
end=$(( $(date +%s) + AFTER_S ))
while [ "$(date +%s)" -lt "$end" ]; do sample after "$HIGH"; done
# every key still there (the workload's SETs rewrite keys of the same set)
TOTAL=0
for p in $(ctl status --json | python3 -c 'import json,sys; print(" ".join(x["primary"] for x in json.load(sys.stdin)["shards"]))'); do
  TOTAL=$((TOTAL + $(redis-cli -h "${p%:*}" -p "${p##*:}" dbsize)))
done
ctl autoscale status >"$TMP/autoscale.out" 2>&1

python3 - "$ROWS" "${OUTFILE:-}" "$TOTAL" "$KEYS" "$LOW" "$HIGH" "$OUT" "$SUSTAIN" "$TMP/autoscale.out" <<'EOF'
import sys, statistics, collections
rows, outfile, total, keys, low, high, out_ops, sustain, asf = sys.argv[1:10]
R = []
for l in open(rows):
    f = l.rstrip("\n").split("\t")
    R.append(dict(t=float(f[0]), ph=f[1], g=float(f[2] or 0), gp=float(f[3] or 0), s=float(f[4] or 0), sp=float(f[5] or 0),
                  err=int(f[6] or 0), shards=f[7], slots=f[8], infl=f[9]))
first = lambda c: next((r["t"] for r in R if r["ph"] != "low" and c(r)), None)
t_shard = first(lambda r: r["shards"] not in ("NA", "2"))
t_slot = first(lambda r: r["slots"] not in ("NA", "0"))
t_done = max((r["t"] for r in R if r["ph"] == "moving"), default=None)
out = [f"{keys} keys; load {low} -> {high} req/s at t=0 (scale-out above {out_ops} ops/s per shard for {sustain} s)",
       f"new shard formed (seen): {t_shard} s; new shard owns its first slot (serves traffic): {t_slot} s; rebalance done: {t_done} s",
       "",
       "| phase | samples | GET ops/s | SET ops/s | GET p99 ms (median / worst) | SET p99 ms (median / worst) | client errors |",
       "|---|---|---|---|---|---|---|"]
for ph in ("low", "high", "moving", "after"):
    x = [r for r in R if r["ph"] == ph]
    if not x:
        continue
    m = statistics.mean
    out.append(f"| {ph} | {len(x)} | {m(r['g'] for r in x):.0f} | {m(r['s'] for r in x):.0f} | "
               f"{statistics.median(r['gp'] for r in x):.2f} / {max(r['gp'] for r in x):.2f} | "
               f"{statistics.median(r['sp'] for r in x):.2f} / {max(r['sp'] for r in x):.2f} | {sum(r['err'] for r in x)} |")
out.append("")
out.append(f"keys after: {total} (want {keys}): {'ok' if int(total) == int(keys) else 'MISMATCH'}")
out.append("")
out.append("autoscaler:")
out += ["    " + l.rstrip() for l in open(asf)]
print("\n".join(out))
if outfile:
    open(outfile, "w").write("\n".join(out) + "\n")
sys.exit(0 if int(total) == int(keys) and t_slot is not None else 1)
EOF
