#!/usr/bin/env bash
# bench/repl.sh — replication: write throughput with replicas attached and
# full-sync time, Shoal vs redis-server configured the same way.
#
# Usage: bench/repl.sh [-r ROUNDS] [-s SHOAL_BIN] [-o OUTFILE] [-k KEYS] [-a]
#   -r ROUNDS    rounds (default 1); medians across rounds are reported
#   -s SHOAL_BIN shoal binary (also $SHOAL_BIN; default: go build ./cmd/shoal)
#   -o OUTFILE   also write a markdown report there (raw rows: OUTFILE.tsv,
#                OUTFILE.fullsync.tsv)
#   -k KEYS      keys for the full-sync test (default 1000000, times SCALE)
#   -a           append-only log on every node (appendfsync everysec);
#                default: persistence off everywhere
# Environment:
#   QUICK=1      smoke run (SCALE=0.1 unless SCALE is set): about 2 minutes
#   SCALE=F      multiply request counts and KEYS (default 1: about 5 minutes)
#   ONLY=REGEX   parts to run (grep -E) on "TEST_PN REPLICAS MODE" for the
#                write runs (e.g. "set_P16 2 sync") and "fullsync"
#   TESTS        redis-benchmark tests (default "set incr lpush")
#   BACKLOG      repl-backlog-size of both servers (default 256mb, shoal's)
#   LOADGEN, KEEP_TMP as in compare.sh
#
# 1. Write throughput. Per configuration — 0, 1, 2 replicas async; 1 and 2
#    replicas with a synchronous acknowledgement — a fresh primary plus its
#    replicas (all on loopback, --replicaof at start) is started for each
#    server; both topologies run while redis-benchmark (-c 50 -r 100000,
#    3-byte values, -P 1 and -P 16, -n 200000 / 2000000 times SCALE: a
#    P16 run lasts ~5 s) hits each primary in turn (order alternating run by
#    run); after each run the replicas are let catch up before the CPU is
#    read and the next run starts (an async replica's tail must neither
#    compete with the other server's run nor drop out of the CPU). Sync rows give both servers the same
#    guarantee — a client learns a write is on a replica before it goes on —
#    and use bench/loadgen for both (GOMAXPROCS=1, -c 50 -r 100000, same -n
#    and -P): shoal runs --sync-replicas 1 (each write's reply waits for one
#    replica's ack); redis, which has no such mode, gets WAIT 1 0 after each
#    batch of P writes (loadgen -wait 1; per batch, the cheapest way for
#    redis; its reply is not counted as an op). Reported: ops/s, ratio shoal/redis (median of the
#    per-run ratios), ops/s relative to the 0-replica row of the same server,
#    and server CPU of primary + replicas per request (µs).
#    After the runs of a configuration, once every replica's offset reached
#    the primary's, DEBUG DIGEST of every node is compared (a line per check).
# 2. Full sync. A primary alone is loaded with KEYS keys "key:%012d" of
#    100-byte values (bench/loadgen -seq), then an empty replica gets
#    REPLICAOF; the time is from sending it until the replica reports
#    master_link_status:up and master_sync_in_progress:0 (shoal: also
#    slave_repl_offset == the primary's master_repl_offset), polled every
#    5 ms. redis twice: disk-based (repl-diskless-sync no) and diskless
#    (repl-diskless-sync yes); repl-diskless-sync-delay 0 in both (redis 7's
#    default of 5 s would be counted as sync time); the replica loads to disk
#    first (repl-diskless-load disabled, the default). Shoal always streams.
#    Afterwards DBSIZE and DEBUG DIGEST of the replica must equal the primary's.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=1
SHOAL_BIN=${SHOAL_BIN:-}
OUTFILE=""
KEYS=1000000
AOF=0
while getopts "r:s:o:k:ah" o; do
  case $o in
    r) ROUNDS=$OPTARG ;;
    s) SHOAL_BIN=$OPTARG ;;
    o) OUTFILE=$OPTARG ;;
    k) KEYS=$OPTARG ;;
    a) AOF=1 ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
if [ -n "${QUICK:-}" ] && [ "${QUICK:-0}" != 0 ]; then SCALE=${SCALE:-0.1}; fi
SCALE=${SCALE:-1}
ONLY=${ONLY:-.}
TESTS=${TESTS:-"set incr lpush"}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-repl.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM
need redis-server redis-cli redis-benchmark python3 go /usr/bin/time

build_loadgen
build_shoal

# Same configuration on both sides: loopback, no snapshots, the log only
# with -a, the same replication backlog (BACKLOG, default shoal's 256mb;
# redis's own default is 1mb, which keeps a few ms of history at these
# rates and stays in the cache, while a backlog that keeps a minute of
# writes streams through fresh memory on either server).
BACKLOG=${BACKLOG:-256mb}
SHOAL_BASE="$SHOAL_BIN server --port {port} --bind 127.0.0.1 --dir {dir} --save '' --repl-backlog-size $BACKLOG"
REDIS_BASE="redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save '' --daemonize no --enable-debug-command local --repl-diskless-sync-delay 0 --repl-backlog-size $BACKLOG"
if [ "$AOF" = 1 ]; then
  SHOAL_BASE="$SHOAL_BASE --appendonly yes --appendfsync everysec"
  REDIS_BASE="$REDIS_BASE --appendonly yes --appendfsync everysec"
else
  REDIS_BASE="$REDIS_BASE --appendonly no"
fi
NKEYS=$(n "$KEYS")
TIMEOUT=$(awk -v s="$SCALE" 'BEGIN{x=int(300*s); if(x<60)x=60; print x}')
SYNC_DEADLINE=$(awk -v s="$SCALE" 'BEGIN{x=int(300*s); if(x<60)x=60; print x}')

RAW=$TMP/raw.tsv
FS=$TMP/fullsync.tsv
CHECKS=$TMP/checks.txt
printf 'round\tscenario\treplicas\tmode\tserver\tops_s\tp50_ms\tp99_ms\tcpu_us_op\tprimary_cpu_us_op\terrors\tbg_pct\n' >"$RAW"
printf 'round\tmode\tsecs\tcheck\n' >"$FS"
: >"$CHECKS"
check() { echo "$*" >>"$CHECKS"; echo "# $*" >&2; }

# --- topologies ---------------------------------------------------------
# start_topo SRV NREP MODE TAG — a primary and NREP replicas of server SRV
# (shoal|redis); MODE sync adds shoal --sync-replicas 1 / redis
# min-replicas-to-write 1. Sets TOPO_PORTS_<srv> / TOPO_PIDS_<srv> (primary
# first) and waits until the primary lists NREP replicas online.
start_topo() {
  local srv=$1 nrep=$2 mode=$3 tag=$4 base extra="" pp pport ports pids i rp
  if [ "$srv" = shoal ]; then
    base=$SHOAL_BASE
    [ "$mode" = sync ] && extra=" --sync-replicas 1"
  else
    base=$REDIS_BASE
    [ "$mode" = sync ] && extra=" --min-replicas-to-write 1" # and WAIT 1 0 per batch (rb)
  fi
  pport=$(free_port) || exit 1
  start_server "$srv-$tag-p" "$base$extra" "$pport"
  ports=$pport pids=$SERVER_PID
  for i in $(seq 1 "$nrep"); do
    rp=$(free_port) || exit 1
    start_server "$srv-$tag-r$i" "$base --replicaof 127.0.0.1 $pport" "$rp"
    ports="$ports $rp" pids="$pids $SERVER_PID"
  done
  printf -v "TOPO_PORTS_$srv" '%s' "$ports"
  printf -v "TOPO_PIDS_$srv" '%s' "$pids"
  wait_online "$srv" "$pport" "$nrep" || exit 1
}

stop_topo() { # stop_topo SRV — TERM to every node at once, then wait for each
  local v="TOPO_PIDS_$1" p
  for p in ${!v}; do kill "$p" 2>/dev/null; done
  for p in ${!v}; do stop_server "$p"; done
  printf -v "TOPO_PIDS_$1" '%s' ""
  printf -v "TOPO_PORTS_$1" '%s' ""
}

# online_count PORT — replicas the primary lists with state=online
online_count() {
  redis-cli -h 127.0.0.1 -p "$1" info replication 2>/dev/null | tr -d '\r' |
    grep -Ec '^slave[0-9]+:.*state=online'
}

# wait_online SRV PORT N — poll (30 s) until the primary lists N replicas online
wait_online() {
  local srv=$1 port=$2 want=$3 i
  for i in $(seq 1 3000); do
    [ "$(online_count "$port")" -ge "$want" ] && return 0
    sleep 0.01
  done
  echo "$srv: $want replica(s) not online after 30 s:" >&2
  redis-cli -h 127.0.0.1 -p "$port" info replication >&2
  return 1
}

# repl_off PORT — the node's offset: slave_repl_offset on a replica,
# master_repl_offset on a primary
repl_off() {
  redis-cli -h 127.0.0.1 -p "$1" info replication 2>/dev/null | tr -d '\r' |
    awk -F: '$1=="role"{r=$2} $1=="slave_repl_offset"{s=$2} $1=="master_repl_offset"{m=$2}
             END{if(r=="slave")print s+0; else print m+0}'
}

# caught_up SRV — wait (60 s) until every replica's offset reached the
# primary's. Called after each run, before the CPU is read: an async
# replica still applying the tail of a run would otherwise compete with
# the next run (of the other server) and its work would be left out of
# this run's CPU per request.
caught_up() {
  local v="TOPO_PORTS_$1" ports pport off p i
  ports=${!v}; pport=${ports%% *}
  [ "$ports" = "$pport" ] && return 0
  off=$(repl_off "$pport")
  for p in ${ports#* }; do
    for i in $(seq 1 6000); do
      [ "$(repl_off "$p")" -ge "$off" ] && break
      sleep 0.01
    done
  done
}

# verify SRV LABEL — wait (60 s) until every replica's offset reached the
# primary's, then compare DEBUG DIGEST and DBSIZE of all nodes; one check line.
verify() {
  local srv=$1 label=$2 v="TOPO_PORTS_$1" ports pport off p ok i d d0 db db0 lines="" same=1 lagging=""
  ports=${!v}; pport=${ports%% *}
  if [ "$ports" = "$pport" ]; then
    check "digest $srv $label: no replicas"
    return
  fi
  off=$(repl_off "$pport")
  for p in ${ports#* }; do
    ok=0
    for i in $(seq 1 6000); do
      [ "$(repl_off "$p")" -ge "$off" ] && { ok=1; break; }
      sleep 0.01
    done
    [ $ok = 1 ] || lagging="$lagging $p(offset $(repl_off "$p") < $off)"
  done
  d0=$(redis-cli -h 127.0.0.1 -p "$pport" debug digest 2>&1)
  db0=$(redis-cli -h 127.0.0.1 -p "$pport" dbsize 2>&1)
  for p in ${ports#* }; do
    d=$(redis-cli -h 127.0.0.1 -p "$p" debug digest 2>&1)
    db=$(redis-cli -h 127.0.0.1 -p "$p" dbsize 2>&1)
    [ "$d" = "$d0" ] && [ "$db" = "$db0" ] || { same=0; lines="$lines replica:$p digest=$d dbsize=$db;"; }
  done
  if [ -n "$lagging" ]; then
    check "digest $srv $label: REPLICA DID NOT CATCH UP within 60 s:$lagging"
  fi
  if [ $same = 1 ]; then
    check "digest $srv $label: primary and $(($(wc -w <<<"$ports") - 1)) replica(s) equal (digest $d0, dbsize $db0, offset $off)"
  else
    check "digest $srv $label: MISMATCH primary:$pport digest=$d0 dbsize=$db0 offset=$off;$lines"
  fi
}

# --- write throughput ----------------------------------------------------
ticks_sum() { local p t=0; for p in "$@"; do t=$((t + $(srv_ticks "$p"))); done; echo $t; }

# rb ROUND SCENARIO NREP MODE SRV TEST P NREQ
rb() {
  local r=$1 sc=$2 nrep=$3 mode=$4 srv=$5 t=$6 P=$7 nreq=$8
  local vp="TOPO_PORTS_$srv" vq="TOPO_PIDS_$srv" port pids e0 e1 T0 T1 Q0 Q1 B0 B1 W0 W1 rc line rps p50 p99 cpu=NA pcpu=NA bg errs
  port=${!vp}; port=${port%% *}; pids=${!vq}
  for p in $pids; do
    kill -0 "$p" 2>/dev/null || { echo "$srv: a node (pid $p) died; logs in $TMP (KEEP_TMP=1 keeps them):" >&2
      tail -5 "$TMP"/"$srv"-*.log >&2; KEEP_TMP=1; exit 1; }
  done
  e0=$(info_field "$port" stats total_error_replies)
  # shellcheck disable=SC2086
  T0=$(ticks_sum $pids); Q0=$(srv_ticks "${pids%% *}"); B0=$(sys_busy); W0=$(now_ticks)
  if [ "$mode" = sync ]; then
    # Sync rows: the same loadgen for both; redis learns that a replica has
    # each batch by WAIT 1 0 after it (its only way), shoal acks each write
    # after a replica has it (--sync-replicas 1).
    local wait=0 prefix=key:
    [ "$srv" = redis ] && wait=1
    # INCR on its own keys, as redis-benchmark (counter:...): the SET
    # rows before it leave non-integers under key:...
    [ "$t" = incr ] && prefix=counter:
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" \
      timeout "$TIMEOUT" env GOMAXPROCS=1 "$LOADGEN" -addr "127.0.0.1:$port" -proto resp -op "$t" -c 50 -r 100000 \
      -n "$nreq" -P "$P" -wait "$wait" -prefix "$prefix" </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
    caught_up "$srv"
    T1=$(ticks_sum $pids); Q1=$(srv_ticks "${pids%% *}"); B1=$(sys_busy); W1=$(now_ticks)
    e1=$(info_field "$port" stats total_error_replies)
    line=$(grep '^loadgen' "$TMP/out" | tail -1)
    rps=$(echo "$line" | sed -n 's/.* ops_s=\([0-9.]*\).*/\1/p')
    p50=$(echo "$line" | sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p')
    p99=$(echo "$line" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p')
    grep -q ' errors=0$' "$TMP/out" || rc=1
  else
  /usr/bin/time -f "%e %U %S" -o "$TMP/time" \
    timeout "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -r 100000 -n "$nreq" -P "$P" -t "$t" --csv \
    </dev/null >"$TMP/out" 2>"$TMP/err"
  rc=$?
  caught_up "$srv"
  # shellcheck disable=SC2086
  T1=$(ticks_sum $pids); Q1=$(srv_ticks "${pids%% *}"); B1=$(sys_busy); W1=$(now_ticks)
  e1=$(info_field "$port" stats total_error_replies)
  line=$(grep -v '^"test"' "$TMP/out" | grep , | tail -1 | tr -d '"')
  rps=$(echo "$line" | awk -F, 'NF>=8{printf "%.0f", $(NF-6)}')
  p50=$(echo "$line" | awk -F, 'NF>=8{print $(NF-3)}')
  p99=$(echo "$line" | awk -F, 'NF>=8{print $(NF-1)}')
  fi
  errs=$(( ${e1/NA/0} - ${e0/NA/0} ))
  if [ $rc -ne 0 ] || [ -z "$rps" ] || [ "$rps" = 0 ]; then
    echo "# $srv $sc failed (rc $rc): $(tr '\n' ' ' <"$TMP/err" | cut -c1-200)" >&2
    rps=NA p50=NA p99=NA
  else
    cpu=$(awk -v a="$T0" -v b="$T1" -v k="$TCK" -v o="$nreq" 'BEGIN{printf "%.2f", (b-a)/k*1e6/o}')
    pcpu=$(awk -v a="$Q0" -v b="$Q1" -v k="$TCK" -v o="$nreq" 'BEGIN{printf "%.2f", (b-a)/k*1e6/o}')
  fi
  bg=$(awk -v t0="$T0" -v t1="$T1" -v b0="$B0" -v b1="$B1" -v w0="$W0" -v w1="$W1" -v k="$TCK" \
         -v f="$TMP/time" 'BEGIN{c=0; while((getline l < f)>0){n=split(l,a," "); if(n==3)c=(a[2]+a[3])*k}
           w=w1-w0; if(w<1)w=1; x=((b1-b0)-(t1-t0)-c)/w*100; if(x<0)x=0; printf "%.0f", x}')
  [ "$errs" -gt 0 ] 2>/dev/null && echo "# $srv $sc $nrep $mode: $errs error replies (INFO stats total_error_replies)" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$sc" "$nrep" "$mode" "$srv" "$rps" "${p50:-NA}" "${p99:-NA}" "$cpu" "$pcpu" "$errs" "$bg" >>"$RAW"
  printf '# round %s %-9s %s %-5s %-5s %10s ops/s  p99 %7s ms  cpu %6s (primary %6s) us/op  errors %s  bg %3s%%\n' \
    "$r" "$sc" "$nrep" "$mode" "$srv" "$rps" "${p99:-NA}" "$cpu" "$pcpu" "$errs" "$bg" >&2
}

CONFIGS="0:async 1:async 2:async 1:sync 2:sync"
START=$(date +%s)
k=0
for r in $(seq 1 "$ROUNDS"); do
  for c in $CONFIGS; do
    nrep=${c%%:*} mode=${c#*:}
    want=0
    for P in 1 16; do for t in $TESTS; do
      echo "${t}_P$P $nrep $mode" | grep -Eq "$ONLY" && want=1
    done; done
    [ $want = 1 ] || continue
    echo "# round $r: $nrep replica(s), $mode" >&2
    start_topo shoal "$nrep" "$mode" "$r-$nrep$mode"
    start_topo redis "$nrep" "$mode" "$r-$nrep$mode"
    for P in 1 16; do
      # Long enough (P16: ~5 s a run) that a run measures the steady state,
      # not the first second's table growth and page faults.
      if [ $P = 1 ]; then NREQ=$(n 200000); else NREQ=$(n 2000000); fi
      for t in $TESTS; do
        sc=${t}_P$P
        echo "$sc $nrep $mode" | grep -Eq "$ONLY" || continue
        k=$((k + 1))
        if [ $((k % 2)) = 1 ]; then ORDER="shoal redis"; else ORDER="redis shoal"; fi
        for srv in $ORDER; do rb "$r" "$sc" "$nrep" "$mode" "$srv" "$t" "$P" "$NREQ"; done
      done
    done
    verify shoal "round $r, $nrep replica(s) $mode"
    verify redis "round $r, $nrep replica(s) $mode"
    stop_topo shoal
    stop_topo redis
    rm -rf "$TMP"/*.dir
  done
done

# --- full sync -----------------------------------------------------------
# sync_time REPLICA_PORT PRIMARY_PORT KIND — prints seconds, or TIMEOUT ...
sync_time() {
  python3 - "$1" "$2" "$3" "$SYNC_DEADLINE" <<'EOF'
import socket, sys, time
rport, pport, kind, deadline = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=30)
        self.f = self.s.makefile('rb')
    def cmd(self, *a):
        a = [x.encode() for x in a]
        self.s.sendall(b''.join([b'*%d\r\n' % len(a)] + [b'$%d\r\n%s\r\n' % (len(x), x) for x in a]))
        line = self.f.readline()
        if line[:1] == b'$':
            n = int(line[1:])
            return b'' if n < 0 else self.f.read(n + 2)[:-2]
        return line.rstrip(b'\r\n')
    def info(self):
        r = self.cmd('INFO', 'replication')
        return dict(l.split(':', 1) for l in r.decode().splitlines() if ':' in l)
p, r = Conn(pport), Conn(rport)
poff = int(p.info().get('master_repl_offset', '0'))
t0 = time.time()
rep = r.cmd('REPLICAOF', '127.0.0.1', str(pport))
if not rep.startswith(b'+OK'):
    print('ERROR REPLICAOF: %r' % rep); sys.exit(1)
while True:
    i = r.info()
    done = i.get('master_link_status') == 'up' and i.get('master_sync_in_progress') == '0'
    if kind == 'shoal':
        done = done and i.get('slave_repl_offset') == str(poff)
    if done:
        print('%.3f' % (time.time() - t0)); break
    if time.time() - t0 > deadline:
        print('TIMEOUT after %.0f s: link=%s in_progress=%s slave_repl_offset=%s primary_offset=%d' % (
            deadline, i.get('master_link_status'), i.get('master_sync_in_progress'), i.get('slave_repl_offset'), poff))
        sys.exit(1)
    time.sleep(0.005)
EOF
}

# full_sync ROUND MODE SRV PRIMARY_PORT BASE — one empty replica, timed
full_sync() {
  local r=$1 mode=$2 srv=$3 pport=$4 base=$5 rp rpid secs ck d0 d db0 db i
  rp=$(free_port) || exit 1
  start_server "$srv-fs$r-$mode" "$base" "$rp"; rpid=$SERVER_PID
  secs=$(sync_time "$rp" "$pport" "$srv")
  case "$secs" in
    [0-9]*) ;;
    *) echo "# $mode: $secs; replica log:" >&2; tail -5 "$TMP/$srv-fs$r-$mode.log" >&2; secs=NA ;;
  esac
  db0=$(redis-cli -h 127.0.0.1 -p "$pport" dbsize 2>&1)
  db=$(redis-cli -h 127.0.0.1 -p "$rp" dbsize 2>&1)
  if [ "$secs" != NA ] && [ "$db" != "$db0" ]; then
    # the replica said it was done but does not hold everything: how much later?
    for i in $(seq 1 6000); do
      db=$(redis-cli -h 127.0.0.1 -p "$rp" dbsize 2>&1); [ "$db" = "$db0" ] && break; sleep 0.01
    done
    check "full sync $mode round $r: REPLICA REPORTED DONE BEFORE HOLDING ALL KEYS (dbsize then < $db0; now $db after up to 60 s more)"
  fi
  d0=$(redis-cli -h 127.0.0.1 -p "$pport" debug digest 2>&1)
  d=$(redis-cli -h 127.0.0.1 -p "$rp" debug digest 2>&1)
  if [ "$d" = "$d0" ] && [ "$db" = "$db0" ]; then
    ck=equal
    check "full sync $mode round $r: $secs s; replica equal to primary (digest $d0, dbsize $db0)"
  else
    ck=MISMATCH
    check "full sync $mode round $r: $secs s; MISMATCH primary digest=$d0 dbsize=$db0, replica digest=$d dbsize=$db"
  fi
  printf '%s\t%s\t%s\t%s\n' "$r" "$mode" "$secs" "$ck" >>"$FS"
  stop_server "$rpid"
  rm -rf "$TMP/$srv-fs$r-$mode.dir"
}

# load_primary NAME CMD — start a primary and SET NKEYS keys; sets LPORT LPID
load_primary() {
  local name=$1 cmd=$2 out db
  LPORT=$(free_port) || exit 1
  start_server "$name" "$cmd" "$LPORT"; LPID=$SERVER_PID
  out=$(GOMAXPROCS=2 "$LOADGEN" -addr "127.0.0.1:$LPORT" -proto resp -op set -seq -n "$NKEYS" \
          -size 100 -c 10 -P 16 </dev/null 2>&1 | tail -1)
  case "$out" in *errors=0*) ;; *) echo "# $name load: $out" >&2 ;; esac
  db=$(redis-cli -h 127.0.0.1 -p "$LPORT" dbsize)
  echo "# $name: loaded $db keys ($(echo "$out" | sed -n 's/.*secs=\([0-9.]*\).*/\1/p') s)" >&2
}

if echo "fullsync" | grep -Eq "$ONLY"; then
  echo "# full sync: $NKEYS keys, 100-byte values" >&2
  load_primary shoal-fs-p "$SHOAL_BASE"
  for r in $(seq 1 "$ROUNDS"); do full_sync "$r" shoal shoal "$LPORT" "$SHOAL_BASE"; done
  stop_server "$LPID"
  load_primary redis-fs-p "$REDIS_BASE --repl-diskless-sync no"
  for r in $(seq 1 "$ROUNDS"); do
    redis-cli -h 127.0.0.1 -p "$LPORT" config set repl-diskless-sync no >/dev/null
    full_sync "$r" redis_disk redis "$LPORT" "$REDIS_BASE"
    redis-cli -h 127.0.0.1 -p "$LPORT" config set repl-diskless-sync yes >/dev/null
    full_sync "$r" redis_diskless redis "$LPORT" "$REDIS_BASE"
  done
  stop_server "$LPID"
fi
ELAPSED=$(($(date +%s) - START))

[ -n "$OUTFILE" ] && { cp "$RAW" "$OUTFILE.tsv"; cp "$FS" "$OUTFILE.fullsync.tsv"; }
META="rounds=$ROUNDS SCALE=$SCALE aof=$AOF fullsync_keys=$NKEYS elapsed=${ELAPSED}s cpus=$(nproc) $(redis-server --version | awk '{print $3}') commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo none) date=$(date -u +%Y-%m-%dT%H:%MZ)"
python3 - "$RAW" "$FS" "$CHECKS" "$OUTFILE" "$META" <<'EOF'
import csv, statistics, sys
raw, fs, checks, outfile, meta = sys.argv[1:6]
def num(x):
    try: return float(x)
    except ValueError: return None
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x, fmt='%.0f'):
    return 'NA' if x is None else fmt % x

rows = list(csv.DictReader(open(raw), delimiter='\t'))
keys, data = [], {}
for r in rows:
    k = (r['scenario'], r['replicas'], r['mode'])
    if k not in data: keys.append(k); data[k] = {}
    data[k].setdefault(r['round'], {})[r['server']] = r
def order(k):
    t, p = k[0].rsplit('_P', 1)
    return (int(p), t, k[2] == 'sync', int(k[1]))
keys.sort(key=order)

def col(k, srv, field):
    return med([num(v.get(srv, {}).get(field, 'NA')) for v in data[k].values()])
table = []
for k in keys:
    s_ops, r_ops = col(k, 'shoal', 'ops_s'), col(k, 'redis', 'ops_s')
    ratios = []
    for v in data[k].values():
        a, b = num(v.get('shoal', {}).get('ops_s', 'NA')), num(v.get('redis', {}).get('ops_s', 'NA'))
        if a and b: ratios.append(a / b)
    base = (k[0], '0', 'async')
    s0 = col(base, 'shoal', 'ops_s') if base in data else None
    r0 = col(base, 'redis', 'ops_s') if base in data else None
    errs = '/'.join(str(sum(int(num(v.get(srv, {}).get('errors', '0')) or 0) for v in data[k].values()))
                    for srv in ('shoal', 'redis'))
    table.append((k[0], k[1], k[2],
                  f(s_ops), f(r_ops), f(med(ratios), '%.2f'),
                  f(s_ops / s0 if s_ops and s0 else None, '%.2f'), f(r_ops / r0 if r_ops and r0 else None, '%.2f'),
                  f(col(k, 'shoal', 'cpu_us_op'), '%.1f'), f(col(k, 'redis', 'cpu_us_op'), '%.1f'),
                  f(col(k, 'shoal', 'primary_cpu_us_op'), '%.1f'), f(col(k, 'redis', 'primary_cpu_us_op'), '%.1f'),
                  errs))
hdr = ('scenario', 'replicas', 'mode', 'shoal_ops_s', 'redis_ops_s', 'ratio', 'shoal_vs_0', 'redis_vs_0',
       'shoal_cpu', 'redis_cpu', 'shoal_pcpu', 'redis_pcpu', 'errors_s/r')
bg = med([num(r['bg_pct']) for r in rows])

fsr = list(csv.DictReader(open(fs), delimiter='\t'))
fsec = {m: med([num(r['secs']) for r in fsr if r['mode'] == m]) for m in ('shoal', 'redis_disk', 'redis_diskless')}
fck = {m: ','.join(sorted({r['check'] for r in fsr if r['mode'] == m})) or 'NA' for m in fsec}
ftable = []
for m in ('shoal', 'redis_disk', 'redis_diskless'):
    ratio = fsec['shoal'] / fsec[m] if fsec['shoal'] and fsec[m] else None
    ftable.append((m, f(fsec[m], '%.3f'), f(ratio, '%.2f'), fck[m]))
checklines = [l.rstrip('\n') for l in open(checks)]

head = [
    'Write throughput: redis-benchmark -c 50 -r 100000, 3-byte values, ops/s at the primary (median over rounds).',
    'ratio = shoal/redis (above 1: shoal faster); *_vs_0 = ops/s relative to the same server with 0 replicas;',
    '*_cpu = CPU of primary + replicas per request (us), *_pcpu = of the primary alone; errors_s/r = error',
    'replies counted by the primaries (INFO stats total_error_replies), shoal/redis, summed over rounds.',
    'sync rows: bench/loadgen for both (GOMAXPROCS=1, same -c/-r/-n/-P); shoal --sync-replicas 1 (each reply',
    'waits for one replica\'s ack), redis WAIT 1 0 after each batch of P writes (the same guarantee, its way).',
    'At P1 redis-benchmark is the bottleneck in the async rows (see bench/README.md): compare the cpu columns.',
]
out = []
out += ['# ' + l for l in head]
w = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(hdr)]
out.append('  '.join(h.ljust(w[i]) for i, h in enumerate(hdr)))
for t in table:
    out.append('  '.join(x.ljust(w[i]) for i, x in enumerate(t)))
out.append('')
out.append('# Full sync of an empty replica (%s): seconds from REPLICAOF to link up, sync done (shoal: offset caught up);' % meta.split('fullsync_keys=')[1].split()[0] + ' keys of 100 B')
out.append('# ratio = shoal secs / this row\'s secs (below 1: shoal faster); redis disk = repl-diskless-sync no, diskless = yes')
out.append('%-16s %10s %6s  %s' % ('mode', 'secs', 'ratio', 'replica_check'))
for t in ftable:
    out.append('%-16s %10s %6s  %s' % t)
out.append('')
out.append('# Replica consistency checks')
out += checklines
out.append('')
out.append('# %s bg_cpu_median=%s%%' % (meta, f(bg)))
if bg is not None and bg > 30:
    out.append('# WARNING: background CPU (other work on the machine) median above 30% of a core: figures are noisy')
print('\n'.join(out))
if outfile:
    with open(outfile, 'w') as o:
        o.write('# Replication, Shoal vs redis-server\n\n`%s`\n\n' % meta)
        o.write('\n'.join(head) + '\n\n')
        o.write('| ' + ' | '.join(hdr) + ' |\n|' + '---|' * len(hdr) + '\n')
        for t in table:
            o.write('| ' + ' | '.join(t) + ' |\n')
        o.write('\n## Full sync\n\n| mode | secs | ratio shoal/this | replica check |\n|---|---|---|---|\n')
        for t in ftable:
            o.write('| ' + ' | '.join(t) + ' |\n')
        o.write('\n## Replica consistency\n\n' + ''.join('- %s\n' % l for l in checklines))
EOF
