#!/usr/bin/env bash
# bench/cluster.sh — cluster mode: the cost of routing on a storage node,
# and failover time, Shoal vs Redis Cluster on the same machine.
#
# Usage: bench/cluster.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTFILE]
# Environment: QUICK=1 (SCALE=0.1), SCALE=F, ONLY=REGEX ("throughput",
# "failover"), KEEP_TMP=1.
#
# 1. Throughput of one cluster-mode node owning every slot: shoal dev
#    --shards 1 --replicas 0 (a manager plus one node; every command checks
#    slot ownership and the write lease) vs redis-server --cluster-enabled
#    yes with CLUSTER ADDSLOTSRANGE 0 16383, and a standalone shoal for the
#    routing overhead; persistence off everywhere. redis-benchmark -c 50 -r 100000, 3-byte values, SET
#    and GET at -P 1 and -P 16; order alternates by round; medians.
# 2. Failover: 3 primaries + 3 replicas. Shoal: shoal dev --shards 3
#    --replicas 1 (defaults: heartbeat 200 ms, lease 1000 ms, margin 250 ms).
#    Redis: redis-cli --cluster create ... --cluster-replicas 1 with
#    cluster-node-timeout 1000 (redis's own detection delay; its default is
#    15000). A primary is killed with SIGKILL; the time is until a SET to a
#    key of its slots, sent with redis-cli -c to its replica, returns OK
#    (polled every 10 ms). Each round kills one primary of a fresh cluster.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=3
SHOAL_BIN=${SHOAL_BIN:-}
OUTFILE=""
while getopts "r:s:o:h" o; do
  case $o in
    r) ROUNDS=$OPTARG ;;
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
[ "${QUICK:-0}" = 1 ] && SCALE=${SCALE:-0.1} && ROUNDS=1
TMP=$(mktemp -d)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
trap 'cleanup; for p in $DEV_PIDS; do kill $p 2>/dev/null; done; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"' EXIT
need redis-server redis-cli redis-benchmark python3
build_shoal
DEV_PIDS=""
ONLY=${ONLY:-.}
ROWS="$TMP/rows.tsv"
: >"$ROWS"

stop_dev() {
  kill "$1" 2>/dev/null
  local i
  for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
}

rps() { # rps PORT TEST P — requests per second from redis-benchmark
  redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -P "$3" -c 50 -r 100000 -d 3 -n "$(n $(( $3 == 1 ? 200000 : 2000000 )))" -q 2>/dev/null |
    tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1
}

if echo throughput | grep -qE "$ONLY"; then
  for r in $(seq 1 "$ROUNDS"); do
    start_dev tp1 --shards 1 --replicas 0 --memcached=false --appendonly=false
    SP=$(echo "$DEV_NODES" | head -1); SDEV=$DEV_PID
    RP=$(free_port); CP=$(free_port)
    start_server redis-cluster "redis-server --port {port} --cluster-port $CP --save '' --appendonly no --cluster-enabled yes --cluster-config-file {dir}/nodes.conf --dir {dir}" "$RP"
    RPID=$SERVER_PID
    redis-cli -p "$RP" cluster addslotsrange 0 16383 >/dev/null
    for i in $(seq 1 100); do [ "$(redis-cli -p "$RP" cluster info | tr -d '\r' | sed -n 's/cluster_state://p')" = ok ] && break; sleep 0.1; done
    AP=$(free_port)
    start_server shoal-standalone "$SHOAL_BIN server --port {port} --save '' --appendonly no" "$AP"
    APID=$SERVER_PID
    for t in set get; do
      for p in 1 16; do
        if [ $((r % 2)) = 1 ]; then order="shoal redis alone"; else order="redis alone shoal"; fi
        for who in $order; do
          case $who in
            shoal) v=$(rps "$SP" $t $p) ;;
            redis) v=$(rps "$RP" $t $p) ;;
            alone) v=$(rps "$AP" $t $p) ;;
          esac
          printf "throughput\t%s_P%s\t%s\t%s\t%s\n" $t $p "$who" "$r" "$v" | tee -a "$ROWS"
        done
      done
    done
    stop_dev "$SDEV"; stop_server "$RPID"; stop_server "$APID"
  done
fi

# own_key PORT — a key the node on PORT serves (SET answers OK, not MOVED)
own_key() {
  local i
  for i in $(seq 0 100000); do
    [ "$(redis-cli -p "$1" set "fo$i" v 2>/dev/null)" = OK ] && { echo "fo$i"; return; }
  done
}

# measure_failover CLIENT_PORT KEY PID — kill PID, time until SET KEY via CLIENT_PORT (-c) is OK
measure_failover() {
  local port=$1 key=$2 pid=$3 t0 t1 r
  t0=$(date +%s%N)
  kill -9 "$pid"
  for i in $(seq 1 3000); do
    r=$(timeout 2 redis-cli -c -p "$port" set "$key" v 2>&1)
    [ "$r" = OK ] && break
    sleep 0.01
  done
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

if echo failover | grep -qE "$ONLY"; then
  for r in $(seq 1 "$ROUNDS"); do
    # shoal
    start_dev fo$r --shards 3 --replicas 1 --memcached=false --appendonly=false
    DEV=$DEV_PID
    read -r PRIM REPL < <("$SHOAL_BIN" ctl --manager "$DEV_MANAGER" status --json | python3 -c '
import json,sys; s=json.load(sys.stdin)["shards"][0]; print(s["primary"].split(":")[1], s["replicas"][0].split(":")[1])')
    KEY=$(own_key "$PRIM")
    PID=$(redis-cli -p "$PRIM" info server | tr -d '\r' | sed -n 's/process_id://p')
    ms=$(measure_failover "$REPL" "$KEY" "$PID")
    printf "failover\tkill_primary\tshoal\t%s\t%s\n" "$r" "$ms" | tee -a "$ROWS"
    stop_dev "$DEV"
    # redis cluster
    PORTS=""; PIDS=""
    for i in 1 2 3 4 5 6; do
      p=$(free_port); cp=$(free_port)
      start_server "rc$r-$i" "redis-server --port {port} --cluster-port $cp --save '' --appendonly no --cluster-enabled yes --cluster-node-timeout 1000 --cluster-config-file {dir}/nodes.conf --dir {dir}" "$p"
      PORTS="$PORTS $p"; PIDS="$PIDS $SERVER_PID"
    done
    hosts=$(for p in $PORTS; do printf "127.0.0.1:%s " "$p"; done)
    yes yes | redis-cli --cluster create $hosts --cluster-replicas 1 >"$TMP/rc$r.create" 2>&1
    for i in $(seq 1 200); do
      ok=1
      for p in $PORTS; do [ "$(redis-cli -p "$p" cluster info | tr -d '\r' | sed -n 's/cluster_state://p')" = ok ] || ok=0; done
      [ $ok = 1 ] && break; sleep 0.1
    done
    P1=$(echo $PORTS | cut -d' ' -f1)
    MID=$(redis-cli -p "$P1" cluster myid | tr -d '\r')
    RPORT=$(redis-cli -p "$P1" cluster nodes | awk -v m="$MID" '$4==m{split($2,a,"[:@]"); print a[2]; exit}')
    for i in $(seq 1 100); do
      [ "$(redis-cli -p "$RPORT" info replication | tr -d '\r' | sed -n 's/master_link_status://p')" = up ] && break; sleep 0.1
    done
    KEY=$(own_key "$P1")
    PID=$(echo $PIDS | cut -d' ' -f1)
    ms=$(measure_failover "$RPORT" "$KEY" "$PID")
    printf "failover\tkill_primary\tredis\t%s\t%s\n" "$r" "$ms" | tee -a "$ROWS"
    for p in $PIDS; do stop_server "$p"; done
  done
fi

python3 - "$ROWS" "${OUTFILE:-}" <<'EOF'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
v = collections.defaultdict(list)
for part, test, who, rnd, val in rows:
    try: v[(part, test, who)].append(float(val))
    except ValueError: pass
out = []
tests = sorted({(p, t) for p, t, _ in v})
out.append("| part | test | shoal | redis | shoal / redis | shoal standalone | cluster / standalone |")
out.append("|---|---|---|---|---|---|---|")
for p, t in tests:
    s, r, a = (statistics.median(v[(p, t, w)]) if v[(p, t, w)] else None for w in ("shoal", "redis", "alone"))
    unit = " ms" if p == "failover" else ""
    f = lambda x: "-" if x is None else (f"{x:.0f}{unit}")
    ratio = "-" if not (s and r) else f"{s/r:.2f}"
    ra = "-" if not (s and a) else f"{s/a:.2f}"
    out.append(f"| {p} | {t} | {f(s)} | {f(r)} | {ratio} | {f(a)} | {ra} |")
print("\n".join(out))
if sys.argv[2]:
    open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
