#!/usr/bin/env bash
# bench/proxy.sh — the proxy: shoal proxy in front of 3 shoal shards vs
# twemproxy (nutcracker) in front of 3 redis-servers, and both servers
# directly, with the same loads.
#
# Usage: bench/proxy.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTFILE]
# Environment: QUICK=1 (SCALE=0.1, 1 round), SCALE=F, ONLY=REGEX on the
# test names (set_P1, get_P16, mget10_P1...), KEEP_TMP=1.
#
# Setups (persistence off everywhere, all on loopback):
#   shoal-proxy: shoal dev --shards 3 --replicas 0; redis-benchmark → its proxy-resp port
#   twemproxy:   nutcracker (redis: true, ketama) → 3 redis-server
#   shoal-direct: one standalone shoal server; redis-direct: one redis-server
# Loads: redis-benchmark -c 50 -r 100000, 3-byte values: SET, GET, and
# MGET of 10 random keys, at -P 1 and -P 16; and GET, SET with one client
# at -P 1 (*_c1: the latency a proxy adds without queueing). Reported per setup: ops/s,
# p50 latency (ms), and the CPU of the proxy process per request (µs; for
# the direct rows, the server's). Ratios: shoal-proxy / twemproxy
# throughput, and at equal CPU (requests per proxy CPU-second, shoal /
# twemproxy: twemproxy is single-threaded, the shoal proxy uses both cores); shoal-proxy p50 minus shoal-direct p50
# (the latency the proxy adds).
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
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
[ "${QUICK:-0}" = 1 ] && SCALE=${SCALE:-0.1} && ROUNDS=1
TMP=$(mktemp -d)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
DEV_PID=""
trap 'cleanup; [ -n "$DEV_PID" ] && kill $DEV_PID 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"' EXIT
need redis-server redis-cli redis-benchmark nutcracker python3
build_shoal
ONLY=${ONLY:-.}
ROWS="$TMP/rows.tsv"
: >"$ROWS"

# Shoal: a dev cluster of 3 primaries with its proxy.
start_dev dev --shards 3 --replicas 0 --appendonly=false
SP=$(sed -n 's/^proxy-resp: 127.0.0.1://p' "$TMP/dev.out")
[ -n "$SP" ] || { echo "shoal dev printed no proxy-resp line" >&2; exit 1; }
SPID=$(pgrep -P "$DEV_PID" -f " proxy " | head -1)

# twemproxy in front of 3 redis-servers.
RS=""
for i in 1 2 3; do
  p=$(free_port)
  start_server "redis$i" "redis-server --port {port} --save '' --appendonly no" "$p"
  RS="$RS $p"
done
TP=$(free_port)
{
  echo "bench:"
  echo "  listen: 127.0.0.1:$TP"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  redis: true"
  echo "  auto_eject_hosts: false"
  echo "  servers:"
  for p in $RS; do echo "   - 127.0.0.1:$p:1"; done
} >"$TMP/nutcracker.yml"
start_server twemproxy "nutcracker -c $TMP/nutcracker.yml -s $(free_port)" "$TP"
TPID=$SERVER_PID

# The direct rows.
DS=$(free_port)
start_server shoal-direct "$SHOAL_BIN server --port {port} --save '' --appendonly no" "$DS"
DSPID=$SERVER_PID
DR=$(free_port)
start_server redis-direct "redis-server --port {port} --save '' --appendonly no" "$DR"
DRPID=$SERVER_PID

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# run WHO PORT PID TEST P [CLIENTS]
run() {
  local who=$1 port=$2 pid=$3 t=$4 p=$5 c=${6:-50} n args out a b v p50 name
  n=$(n $(( p == 1 ? 200000 : 1000000 )))
  name="${t}_P$p"
  if [ "$c" != 50 ]; then n=$(n 40000); name="${t}_P${p}_c$c"; fi
  case $t in
    set) args=(-t set) ;;
    get) args=(-t get) ;;
    mget10) args=(mget key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__
                 key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__ key:__rand_int__)
            n=$(( n / 4 )) ;;
  esac
  a=$(ticks "$pid")
  out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -r 100000 -d 3 -P "$p" -n "$n" -q "${args[@]}" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)
  b=$(ticks "$pid")
  v=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p')
  p50=$(echo "$out" | sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p')
  cpu=$(awk -v t=$((b - a)) -v k="$TCK" -v n="$n" 'BEGIN{printf "%.2f", t / k * 1e6 / n}')
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$who" "$r" "${v:-0}" "${p50:-0}" "$cpu" | tee -a "$ROWS"
}

# Preload the keys MGET reads (through each front end).
redis-benchmark -h 127.0.0.1 -p "$SP" -t set -r 100000 -n 200000 -P 16 -q >/dev/null 2>&1
redis-benchmark -h 127.0.0.1 -p "$TP" -t set -r 100000 -n 200000 -P 16 -q >/dev/null 2>&1
redis-benchmark -h 127.0.0.1 -p "$DS" -t set -r 100000 -n 200000 -P 16 -q >/dev/null 2>&1
redis-benchmark -h 127.0.0.1 -p "$DR" -t set -r 100000 -n 200000 -P 16 -q >/dev/null 2>&1

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="shoal-proxy twemproxy shoal-direct redis-direct"; else order="twemproxy shoal-proxy redis-direct shoal-direct"; fi
  for t in set get mget10; do
    for p in 1 16; do
      echo "${t}_P$p" | grep -qE "$ONLY" || continue
      for who in $order; do
        case $who in
          shoal-proxy) run "$who" "$SP" "$SPID" $t $p ;;
          twemproxy) run "$who" "$TP" "$TPID" $t $p ;;
          shoal-direct) run "$who" "$DS" "$DSPID" $t $p ;;
          redis-direct) run "$who" "$DR" "$DRPID" $t $p ;;
        esac
      done
    done
  done
  # The latency a proxy adds, without queueing: one client, pipeline 1.
  for t in get set; do
    echo "${t}_P1_c1" | grep -qE "$ONLY" || continue
    for who in $order; do
      case $who in
        shoal-proxy) run "$who" "$SP" "$SPID" $t 1 1 ;;
        twemproxy) run "$who" "$TP" "$TPID" $t 1 1 ;;
        shoal-direct) run "$who" "$DS" "$DSPID" $t 1 1 ;;
        redis-direct) run "$who" "$DR" "$DRPID" $t 1 1 ;;
      esac
    done
  done
done

python3 - "$ROWS" "${OUTFILE:-}" <<'EOF'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
v = collections.defaultdict(lambda: collections.defaultdict(list))
for test, who, rnd, ops, p50, cpu in rows:
    d = v[(test, who)]
    d["ops"].append(float(ops)); d["p50"].append(float(p50)); d["cpu"].append(float(cpu))
med = lambda t, w, k: statistics.median(v[(t, w)][k]) if v[(t, w)][k] else 0
tests = sorted({t for t, _ in v}, key=lambda t: (t.split("_")[0], t.split("_P")[1]))
out = ["| test | shoal proxy ops/s | twemproxy ops/s | ratio | proxy CPU/op shoal : twemproxy (µs) | ratio at equal CPU | p50 shoal proxy / direct (ms) | p50 twemproxy / redis direct (ms) | proxy adds p50 (ms) |",
       "|---|---|---|---|---|---|---|---|---|"]
for t in tests:
    so, to = med(t, "shoal-proxy", "ops"), med(t, "twemproxy", "ops")
    sc, tc = med(t, "shoal-proxy", "cpu"), med(t, "twemproxy", "cpu")
    sp, dp = med(t, "shoal-proxy", "p50"), med(t, "shoal-direct", "p50")
    tp, rp = med(t, "twemproxy", "p50"), med(t, "redis-direct", "p50")
    ratio = f"{so/to:.2f}" if to else "-"
    # Requests per second of proxy CPU, shoal over twemproxy (twemproxy
    # is single-threaded; this is the throughput ratio at equal CPU).
    eq = f"{tc/sc:.2f}" if sc else "-"
    out.append(f"| {t} | {so:.0f} | {to:.0f} | {ratio} | {sc:.2f} : {tc:.2f} | {eq} | {sp:.3f} / {dp:.3f} | {tp:.3f} / {rp:.3f} | {sp-dp:+.3f} |")
print("\n".join(out))
if sys.argv[2]:
    open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
