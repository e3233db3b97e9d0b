#!/usr/bin/env bash
# bench/memory.sh — memory per key, Shoal vs redis-server.
#
# Usage: bench/memory.sh [-s SHOAL_BIN] [-o OUTFILE] [-k KEYS] [-d VALUE_BYTES]
#   -s SHOAL_BIN shoal binary (default: go build ./cmd/shoal into a temp dir)
#   -o OUTFILE   also write a markdown report there
#   -k KEYS      distinct keys to load (default 1000000, times SCALE)
#   -d BYTES     value size (default 100)
# Environment: SCALE, SHOAL_CMD, REDIS_CMD, LOADGEN, KEEP_TMP as in compare.sh.
#
# Each server is started fresh (one at a time, so they do not compete for
# RAM), its empty baseline taken (INFO memory used_memory, VmRSS of the
# process), then KEYS distinct keys "key:%012d" (0..KEYS-1) are SET with
# values of BYTES 'x' by bench/loadgen -seq (10 connections, pipeline 16),
# then, after 2 s to settle, the same figures are taken again and DBSIZE read.
# Reported per key: (loaded - baseline) / DBSIZE, for used_memory (the
# server's own accounting; NA if the server has no INFO memory) and RSS (what
# the OS sees: includes allocator / GC slack; for a Go server it depends on
# GOGC and on when the GC last ran), and the shoal/redis ratios (lower is better).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHOAL_BIN=""
OUTFILE=""
KEYS=1000000
VSIZE=100
while getopts "s:o:k:d:h" o; do
  case $o in
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    k) KEYS=$OPTARG ;;
    d) VSIZE=$OPTARG ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
  esac
done
SCALE=${SCALE:-1}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-memory.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
need redis-server redis-cli python3 go

build_loadgen
if [ -z "${SHOAL_CMD:-}" ]; then
  build_shoal
  SHOAL_CMD="$SHOAL_BIN server --port {port} --bind 127.0.0.1"
fi
REDIS_CMD=${REDIS_CMD:-"redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no"}
NKEYS=$(n "$KEYS")

# measure NAME CMD — sets MEASURED to: name dbsize used0 used1 rss0_kb rss1_kb load_secs
measure() {
  local name=$1 cmd=$2 port pid u0 u1 r0 r1 db t0 t1 out
  port=$(free_port) || exit 1
  start_server "$name" "$cmd" "$port"; pid=$SERVER_PID
  sleep 1
  u0=$(info_field "$port" memory used_memory); r0=$(rss_kb "$pid")
  t0=$(date +%s.%N)
  out=$(GOMAXPROCS=2 "$LOADGEN" -addr "127.0.0.1:$port" -proto resp -op set -seq -n "$NKEYS" \
          -size "$VSIZE" -c 10 -P 16 </dev/null 2>&1 | tail -1)
  t1=$(date +%s.%N)
  case "$out" in *errors=0*) ;; *) echo "# $name load: $out" >&2 ;; esac
  sleep 2
  db=$(redis-cli -h 127.0.0.1 -p "$port" dbsize 2>/dev/null | tr -d '\r')
  u1=$(info_field "$port" memory used_memory); r1=$(rss_kb "$pid")
  [ "$db" = "$NKEYS" ] || echo "# $name: DBSIZE $db, expected $NKEYS" >&2
  MEASURED="$name ${db:-0} $u0 $u1 ${r0:-0} ${r1:-0} $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
  stop_server "$pid"
}

echo "# loading $NKEYS keys of $VSIZE-byte values into each server" >&2
measure shoal "$SHOAL_CMD"; S=$MEASURED
measure redis "$REDIS_CMD"; R=$MEASURED
META="keys=$NKEYS value=${VSIZE}B $(redis-server --version | awk '{print $3}') shoal_cmd=\"$SHOAL_CMD\" commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none) date=$(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$S" "$R" "$OUTFILE" "$META" <<'EOF'
import sys
def parse(s):
    n, db, u0, u1, r0, r1, secs = s.split()
    db = int(db or 0)
    per = lambda a, b: (float(b) - float(a)) / db if db and 'NA' not in (a, b) else None
    return dict(name=n, db=db, used=per(u0, u1), rss=per(int(r0) * 1024, int(r1) * 1024),
                used_abs=None if u1 == 'NA' else int(u1), rss_abs=int(r1) * 1024, secs=secs)
s, r = parse(sys.argv[1]), parse(sys.argv[2])
outfile, meta = sys.argv[3], sys.argv[4]
f = lambda x, spec='.1f': 'NA' if x is None else format(x, spec)
ratio = lambda a, b: a / b if a is not None and b else None
mb = lambda x: 'NA' if x is None else '%.1f' % (x / 2**20)
rows = [('dbsize', str(s['db']), str(r['db']), ''),
        ('used_memory_bytes_per_key', f(s['used']), f(r['used']), f(ratio(s['used'], r['used']), '.2f')),
        ('rss_bytes_per_key', f(s['rss']), f(r['rss']), f(ratio(s['rss'], r['rss']), '.2f')),
        ('used_memory_total_MiB', mb(s['used_abs']), mb(r['used_abs']), ''),
        ('rss_total_MiB', mb(s['rss_abs']), mb(r['rss_abs']), ''),
        ('load_secs', s['secs'], r['secs'], '')]
hdr = ('metric', 'shoal', 'redis', 'ratio')
w = [max(len(x[i]) for x in [hdr] + rows) for i in range(4)]
for row in [hdr] + rows:
    print('  '.join(x.ljust(w[i]) if i == 0 else x.rjust(w[i]) for i, x in enumerate(row)))
print('# ' + meta)
if outfile:
    with open(outfile, 'w') as o:
        o.write('# Memory per key, Shoal vs redis-server\n\n`%s`\n\n' % meta)
        o.write('(loaded - empty baseline) / DBSIZE; ratio = shoal/redis (lower is better for shoal).\n\n')
        o.write('| metric | shoal | redis | ratio |\n|---|---|---|---|\n')
        for row in rows:
            o.write('| ' + ' | '.join(row) + ' |\n')
EOF
