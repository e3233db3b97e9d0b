#!/usr/bin/env bash
# bench/aof.sh — write throughput with the append-only log on, Shoal vs
# redis-server configured the same (appendonly yes, the same appendfsync,
# no snapshots, each in its own fresh directory on the same disk).
#
# Usage: bench/aof.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTPREFIX] [-p "everysec always"]
#   runs bench/compare.sh once per policy on the write scenarios
#   (ONLY defaults to set/incr/lpush/sadd/hset/zadd/mset and the loadgen sets);
#   OUTPREFIX.<policy>.md gets each report.
# Environment: SCALE, ONLY, LOADGEN, KEEP_TMP as in compare.sh.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=3
SHOAL_BIN=""
OUT=""
POLICIES="everysec always"
while getopts "r:s:o:p:h" o; do
  case $o in
    r) ROUNDS=$OPTARG ;;
    s) SHOAL_BIN=$OPTARG ;;
    o) OUT=$OPTARG ;;
    p) POLICIES=$OPTARG ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
done
if [ -z "$SHOAL_BIN" ]; then
  SHOAL_BIN=$(mktemp -d "${TMPDIR:-/tmp}/shoal-aof-bin.XXXXXX")/shoal
  (cd "$REPO" && go build -o "$SHOAL_BIN" ./cmd/shoal) || exit 2
fi
export ONLY=${ONLY:-'^(set_3B|set_1K|incr|lpush|sadd|hset|zadd|mset10|lg_set_3B)_P'}
for p in $POLICIES; do
  echo "## appendfsync $p" >&2
  args=(-r "$ROUNDS" -s "$SHOAL_BIN")
  [ -n "$OUT" ] && args+=(-o "$OUT.$p.md")
  SHOAL_CMD="$SHOAL_BIN server --port {port} --bind 127.0.0.1 --dir {dir} --appendonly yes --appendfsync $p" \
  REDIS_CMD="redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save '' --appendonly yes --appendfsync $p --daemonize no" \
    "$HERE/compare.sh" "${args[@]}" || exit $?
done
