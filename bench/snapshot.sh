#!/usr/bin/env bash
# bench/snapshot.sh — snapshot save and load time, Shoal vs redis-server.
#
# Usage: bench/snapshot.sh [-s SHOAL_BIN] [-o OUTFILE] [-k KEYS] [-d VALUE_BYTES] [-a]
#   -k KEYS      distinct keys (default 1000000, times SCALE); -d value size (default 10)
#   -a           append-only log instead of a snapshot: both servers run with
#                --appendonly yes --appendfsync everysec, no BGSAVE; the file size
#                is the log directory's, the load time is the log replay's
# Environment: SCALE, LOADGEN, KEEP_TMP as in compare.sh.
#
# Per server, one at a time, in its own fresh directory:
#   1. start (shoal: --save "" --dir D; redis: --save '' --dbfilename dump.rdb
#      --dir D), SET KEYS keys "key:%012d" with bench/loadgen -seq;
#   2. BGSAVE; save time = wall clock from sending BGSAVE until INFO
#      persistence shows rdb_bgsave_in_progress:0 (polled every 2 ms);
#   3. stop (SIGTERM; no save on exit with an empty save policy), restart on
#      the same directory; load time = from spawning the process until DBSIZE
#      answers with an integer (not -LOADING), polled every 2 ms — it
#      includes process start-up; the server's own log line is shown too.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHOAL_BIN=""
OUTFILE=""
KEYS=1000000
VSIZE=10
AOF=0
while getopts "s:o:k:d:ah" o; do
  case $o in
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    k) KEYS=$OPTARG ;;
    d) VSIZE=$OPTARG ;;
    a) AOF=1 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
SCALE=${SCALE:-1}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-snapshot.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
need redis-server redis-cli python3 go

build_loadgen
build_shoal
NKEYS=$(n "$KEYS")

# poll PORT MODE — MODE bgsave: seconds until rdb_bgsave_in_progress:0;
# MODE load: seconds (since $SPAWN, epoch float) until DBSIZE is an integer.
poll() {
  python3 - "$1" "$2" "${SPAWN:-0}" <<'EOF'
import socket, sys, time
port, mode, spawn = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
t0 = time.time()
def cmd(s, *a):
    s.sendall(b''.join([b'*%d\r\n' % len(a)] + [b'$%d\r\n%s\r\n' % (len(x), x) for x in a]))
    f = s.makefile('rb'); line = f.readline()
    if line[:1] == b'$':
        n = int(line[1:]); data = f.read(n + 2); return data
    return line
while True:
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=5)
        break
    except OSError:
        time.sleep(0.002)
if mode == 'bgsave':
    t0 = time.time()
    r = cmd(s, b'BGSAVE')
    assert r.startswith(b'+Background saving started'), r
while True:
    if mode == 'bgsave':
        r = cmd(s, b'INFO', b'persistence')
        if b'rdb_bgsave_in_progress:0' in r:
            print('%.3f' % (time.time() - t0)); break
    else:
        r = cmd(s, b'DBSIZE')
        if r[:1] == b':':
            print('%.3f %s' % (time.time() - spawn, r[1:].strip().decode())); break
    time.sleep(0.002)
EOF
}

# run NAME CMD FILE — sets RESULT: save_secs file_bytes load_secs dbsize
run() {
  local name=$1 cmd=$2 file=$3 dir port pid out save size load
  dir=$TMP/data-$name; mkdir -p "$dir"
  cmd=${cmd//\{dir\}/$dir}
  port=$(free_port) || exit 1
  start_server "$name" "$cmd" "$port"; pid=$SERVER_PID
  out=$(GOMAXPROCS=2 "$LOADGEN" -addr "127.0.0.1:$port" -proto resp -op set -seq -n "$NKEYS" \
          -size "$VSIZE" -c 10 -P 16 </dev/null 2>&1 | tail -1)
  case "$out" in *errors=0*) ;; *) echo "# $name load: $out" >&2 ;; esac
  if [ "$AOF" = 1 ]; then
    save=-
    size=$(du -sb "$dir/appendonlydir" | cut -f1)
  else
    save=$(poll "$port" bgsave)
    size=$(stat -c %s "$dir/$file")
  fi
  stop_server "$pid"
  port=$(free_port) || exit 1
  cmd=${cmd//--port [0-9]*/}
  SPAWN=$(date +%s.%N)
  bash -c "exec ${cmd//\{port\}/$port}" >"$TMP/$name-load.log" 2>&1 &
  pid=$!; BENCH_PIDS="$BENCH_PIDS $pid"
  load=$(SPAWN=$SPAWN poll "$port" load)
  grep -hE "DB loaded|loaded from disk|log replayed|AOF loaded|Done loading" "$TMP/$name-load.log" | tail -2 | sed "s/^/# $name: /" >&2
  stop_server "$pid"
  RESULT="$save $size $load"
}

echo "# $NKEYS keys, ${VSIZE}-byte values" >&2
if [ "$AOF" = 1 ]; then
  run shoal "$SHOAL_BIN server --port {port} --bind 127.0.0.1 --save '' --dir {dir} --appendonly yes --appendfsync everysec" -; S=$RESULT
  run redis "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dbfilename dump.rdb --dir {dir}" -; R=$RESULT
else
  run shoal "$SHOAL_BIN server --port {port} --bind 127.0.0.1 --save '' --dir {dir}" dump.shoal; S=$RESULT
  run redis "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --dbfilename dump.rdb --dir {dir}" dump.rdb; R=$RESULT
fi
META="keys=$NKEYS value=${VSIZE}B aof=$AOF $(redis-server --version | awk '{print $3}') commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none) cpus=$(nproc) date=$(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$S" "$R" "$OUTFILE" "$META" <<'EOF'
import sys
s, r = sys.argv[1].split(), sys.argv[2].split()
outfile, meta = sys.argv[3], sys.argv[4]
rows = [('bgsave_secs', s[0], r[0]), ('file_MiB', '%.1f' % (int(s[1]) / 2**20), '%.1f' % (int(r[1]) / 2**20)),
        ('load_secs (spawn to data served)', s[2], r[2]), ('dbsize_after_load', s[3], r[3])]
print('%-34s %10s %10s' % ('metric', 'shoal', 'redis'))
for row in rows:
    print('%-34s %10s %10s' % row)
print('# ' + meta)
if outfile:
    with open(outfile, 'w') as o:
        o.write('# Snapshot save / load, Shoal vs redis-server\n\n`%s`\n\n| metric | shoal | redis |\n|---|---|---|\n' % meta)
        for row in rows:
            o.write('| %s | %s | %s |\n' % row)
EOF
