package server_test

import (
	"fmt"
	"math/rand"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	tu "shoal/internal/testutil"
)

// Replication between in-process servers: a primary and replicas on
// loopback, compared slot by slot with the digests.

func replicaOf(t *testing.T, dir string, p *node, directives ...string) *node {
	t.Helper()
	return startNode(t, dir, nil, append([]string{"replicaof", "127.0.0.1 " + portOf(p)}, directives...)...)
}

func portOf(n *node) string {
	_, port, _ := net.SplitHostPort(n.addr)
	return port
}

// waitUntil polls cond until it holds (60 s at most).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitCaughtUp waits until the replica's link is up and it has applied
// everything the primary has.
func waitCaughtUp(t *testing.T, p, r *node) {
	t.Helper()
	rc := tu.Dial(t, r.addr)
	waitUntil(t, "the replica to catch up", func() bool {
		return infoField(t, rc, "replication", "master_link_status") == "up" &&
			r.srv.ReplOffset() == p.srv.ReplOffset()
	})
}

func slotDigests(db *engine.DB) []uint64 {
	out := make([]uint64, cluster.NumSlots)
	for i := range out {
		db.Lock(i)
		out[i] = db.Digest(db.Slot(i))
		db.Unlock(i)
	}
	return out
}

// sameData fails unless every slot digests the same on both nodes once
// b has every record of a. It polls: a primary's own expiries go on
// after its writers stopped (deletes streamed like any write).
func sameData(t *testing.T, a, b *node) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var da, db []uint64
	for {
		da, db = slotDigests(a.srv.DB()), slotDigests(b.srv.DB())
		if a.srv.ReplOffset() == b.srv.ReplOffset() && slices.Equal(da, db) && a.srv.DB().KeyCount() == b.srv.DB().KeyCount() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, m := a.srv.DB().KeyCount(), b.srv.DB().KeyCount(); n != m {
		t.Errorf("key counts differ: %d on %s, %d on %s", n, a.addr, m, b.addr)
	}
	bad := 0
	for i := range da {
		if da[i] != db[i] {
			if bad < 5 {
				t.Errorf("slot %d: digest %016x on %s, %016x on %s", i, da[i], a.addr, db[i], b.addr)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d slots differ\n%s", bad, diffLines(canonDB(a.srv.DB()), canonDB(b.srv.DB())))
	}
}

func closeAll(nodes ...*node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n != nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.srv.Close() }()
		}
	}
	wg.Wait()
}

// fillDirect stores n string keys straight into the engine (fast setup
// of a large primary; no records, as before any replica existed).
func fillDirect(db *engine.DB, n int) {
	val := []byte(strings.Repeat("v", 32))
	for i := 0; i < n; i++ {
		k := []byte("key:" + strconv.Itoa(i))
		s := cluster.Slot(k)
		db.Lock(s)
		db.SetString(db.Slot(s), k, val, 0, false)
		db.Unlock(s)
	}
}

// writer runs random writes of every type against addr until stopped.
type writer struct {
	stop chan struct{}
	done chan struct{}
	n    atomic.Int64
}

func startWriter(t *testing.T, addr string, seed int64) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	c := tu.Dial(t, addr)
	go func() {
		defer close(w.done)
		rng := rand.New(rand.NewSource(seed))
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := c.DoReply(randomWrite(rng, i)...); err != nil {
				return
			}
			w.n.Add(1)
		}
	}()
	return w
}

func (w *writer) finish() { close(w.stop); <-w.done }

// TestReplicaFullCopyWhileWriting: a replica attaching to a primary with
// a million keys gets a streamed full copy while writes of every type go
// on, then the stream; every slot ends equal.
func TestReplicaFullCopyWhileWriting(t *testing.T) {
	keys := 1_000_000
	if raceEnabled || testing.Short() {
		keys = 200_000
	}
	p := startNode(t, t.TempDir(), nil)
	var r *node
	defer func() { closeAll(p, r) }()
	fillDirect(p.srv.DB(), keys)
	w := startWriter(t, p.addr, 1)
	waitUntil(t, "writes before the replica attaches", func() bool { return w.n.Load() > 200 })
	r = replicaOf(t, t.TempDir(), p)
	rc := tu.Dial(t, r.addr)
	waitUntil(t, "the full copy", func() bool {
		return infoField(t, rc, "replication", "master_link_status") == "up"
	})
	at := w.n.Load()
	waitUntil(t, "writes after the copy", func() bool { return w.n.Load() > at+500 })
	w.finish()
	waitCaughtUp(t, p, r)
	sameData(t, p, r)
	pc := tu.Dial(t, p.addr)
	wantInfo(t, pc, "replication", "sync_full", "1")
	// The digests through the command agree too (expiry stopped on the
	// primary so that nothing changes between the two reads).
	steps(t, pc, "DEBUG SET-ACTIVE-EXPIRE 0", "OK")
	sameData(t, p, r)
	for _, slot := range []string{"0", "8000", "16383"} {
		if a, b := pc.Do("DEBUG", "DIGEST-SLOT", slot), rc.Do("DEBUG", "DIGEST-SLOT", slot); a != b {
			t.Fatalf("DEBUG DIGEST-SLOT %s: %s vs %s", slot, a, b)
		}
	}
	if a, b := pc.Do("DEBUG", "DIGEST"), rc.Do("DEBUG", "DIGEST"); a != b || a == `"`+strings.Repeat("0", 40)+`"` {
		t.Fatalf("DEBUG DIGEST: %s vs %s", a, b)
	}
}

// TestReplicaRestartResumesIncrementally: a replica with the log on,
// stopped while the primary writes, comes back from its own files and
// gets only what it missed.
func TestReplicaRestartResumesIncrementally(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	rdir := t.TempDir()
	r := replicaOf(t, rdir, p, "appendonly", "yes")
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		pc.Do(randomWrite(rng, i)...)
	}
	waitCaughtUp(t, p, r)
	r.srv.Close()
	for i := 0; i < 2000; i++ {
		pc.Do(randomWrite(rng, i)...)
	}
	r = replicaOf(t, rdir, p, "appendonly", "yes")
	waitCaughtUp(t, p, r)
	sameData(t, p, r)
	wantInfo(t, pc, "replication", "sync_full", "1")
	wantInfo(t, pc, "replication", "sync_partial_ok", "1")
}

// TestReplicaOutsideBacklogGetsFullCopy: a replica away for longer than
// the backlog covers takes a full copy.
func TestReplicaOutsideBacklogGetsFullCopy(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "repl-backlog-size", "1mb")
	rdir := t.TempDir()
	r := replicaOf(t, rdir, p, "appendonly", "yes")
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	pc.Do("SET", "before", "1")
	waitCaughtUp(t, p, r)
	r.srv.Close()
	val := strings.Repeat("x", 1000)
	for i := 0; i < 4000; i++ { // ~4 MB of records: past the 1 MiB backlog
		pc.Do("SET", "k"+strconv.Itoa(i%100), val)
	}
	r = replicaOf(t, rdir, p, "appendonly", "yes")
	waitCaughtUp(t, p, r)
	sameData(t, p, r)
	wantInfo(t, pc, "replication", "sync_full", "2")
	wantInfo(t, pc, "replication", "sync_partial_err", "1")
}

// TestReplFullSyncAfter: repl-full-sync-after makes a replica that was
// away longer ask for a full copy even though the backlog covers it.
func TestReplFullSyncAfter(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	rdir := t.TempDir()
	r := replicaOf(t, rdir, p, "appendonly", "yes", "repl-full-sync-after", "1")
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	pc.Do("SET", "a", "1")
	waitCaughtUp(t, p, r)
	r.srv.Close()
	pc.Do("SET", "b", "2")
	gone := time.Now()
	waitUntil(t, "the replica to be away past repl-full-sync-after", func() bool { return time.Since(gone) > 1100*time.Millisecond })
	r = replicaOf(t, rdir, p, "appendonly", "yes", "repl-full-sync-after", "1")
	waitCaughtUp(t, p, r)
	sameData(t, p, r)
	wantInfo(t, pc, "replication", "sync_full", "2")
}

// TestPromotionOtherReplicaFollowsIncrementally: REPLICAOF NO ONE keeps
// the data, starts a new id and keeps the old one; the other replica and
// the old primary follow the new primary without a full copy.
func TestPromotionOtherReplicaFollowsIncrementally(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	a := replicaOf(t, t.TempDir(), p)
	b := replicaOf(t, t.TempDir(), p)
	defer func() { closeAll(p, a, b) }()
	pc := tu.Dial(t, p.addr)
	// The old primary must not write after the promotion (its expiries
	// would be records the new primary lacks: it would then rightly need
	// a full copy).
	steps(t, pc, "DEBUG SET-ACTIVE-EXPIRE 0", "OK")
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 1000; i++ {
		pc.Do(randomWrite(rng, i)...)
	}
	waitCaughtUp(t, p, a)
	waitCaughtUp(t, p, b)
	ac, bc := tu.Dial(t, a.addr), tu.Dial(t, b.addr)
	oldID := infoField(t, ac, "replication", "master_replid")
	steps(t, ac, "REPLICAOF NO ONE", "OK")
	wantInfo(t, ac, "replication", "role", "master")
	if got := infoField(t, ac, "replication", "master_replid2"); got != oldID {
		t.Fatalf("master_replid2 = %s, want the old id %s", got, oldID)
	}
	if infoField(t, ac, "replication", "master_replid") == oldID {
		t.Fatal("the promoted node kept its old replication id")
	}
	steps(t, ac, "SET promoted yes", "OK")
	steps(t, bc, "REPLICAOF 127.0.0.1 "+portOf(a), "OK")
	steps(t, pc, "REPLICAOF 127.0.0.1 "+portOf(a), "OK")
	for i := 0; i < 500; i++ {
		ac.Do(randomWrite(rng, i)...)
	}
	waitCaughtUp(t, a, b)
	waitCaughtUp(t, a, p)
	sameData(t, a, b)
	sameData(t, a, p)
	wantInfo(t, ac, "replication", "sync_partial_ok", "2")
	wantInfo(t, ac, "replication", "sync_full", "0")
	if got := bc.Do("GET", "promoted"); got != `"yes"` {
		t.Fatalf("GET promoted on the other replica: %s", got)
	}
}

// TestWait: WAIT counts the replicas that have the client's writes and
// times out with the count it reached.
func TestWait(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	var r *node
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	steps(t, pc, "SET a 1", "OK")
	start := time.Now()
	steps(t, pc, "WAIT 1 100", "(integer) 0")
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("WAIT 1 100 returned after %v without a replica", el)
	}
	steps(t, pc, "WAIT 0 0", "(integer) 0")
	steps(t, pc, "WAIT -1 x", "(error) ERR value is not an integer or out of range")
	r = replicaOf(t, t.TempDir(), p)
	waitCaughtUp(t, p, r)
	steps(t, pc, "SET a 2", "OK", "WAIT 1 0", "(integer) 1")
	// A WAIT blocked forever is released by the replica's ack.
	steps(t, pc, "SET a 3", "OK", "WAIT 2 200", "(integer) 1")
	rc := tu.Dial(t, r.addr)
	if got := rc.Do("WAIT", "1", "0"); !strings.HasPrefix(got, "(error) ERR WAIT cannot be used with replica") {
		t.Fatalf("WAIT on a replica: %s", got)
	}
}

// TestSyncReplicas: with sync-replicas 1 a write is answered once a
// replica has it; without a replica it fails after sync-timeout with
// NOREPLICAS, pipelined replies included; a replica arriving within the
// timeout releases the waiting writes.
func TestSyncReplicas(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "sync-replicas", "1", "sync-timeout", "200")
	var r *node
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	start := time.Now()
	if got := pc.Do("SET", "a", "1"); !strings.HasPrefix(got, "(error) NOREPLICAS") {
		t.Fatalf("SET without replicas: %s", got)
	}
	if el := time.Since(start); el < 190*time.Millisecond {
		t.Fatalf("the write failed after %v, before sync-timeout", el)
	}
	// Reads of slots without unconfirmed writes are not held; a read of
	// the unconfirmed value is (no dirty read) and fails the same way.
	steps(t, pc, "GET zz", "(nil)")
	if got := pc.Do("GET", "a"); !strings.HasPrefix(got, "(error) NOREPLICAS") {
		t.Fatalf("GET of an unconfirmed write: %s", got)
	}
	// A pipeline: every held reply fails.
	pc.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"))
	for i := 0; i < 3; i++ {
		rp, err := pc.Read()
		if err != nil || rp.Kind != '-' || !strings.HasPrefix(rp.Str, "NOREPLICAS") {
			t.Fatalf("pipelined reply %d: %v %v", i, rp, err)
		}
	}
	r = replicaOf(t, t.TempDir(), p)
	waitCaughtUp(t, p, r)
	steps(t, pc, "SET c 1", "OK", "INCR n", "(integer) 2")
	rc := tu.Dial(t, r.addr)
	// Acknowledged means the replica has it: readable there at once.
	steps(t, rc, "GET c", `"1"`, "GET n", `"2"`)
	// With the replica gone, writes fail again.
	r.srv.Close()
	r = nil
	waitUntil(t, "the replica to be gone", func() bool { return infoField(t, pc, "replication", "connected_slaves") == "0" })
	if got := pc.Do("SET", "d", "1"); !strings.HasPrefix(got, "(error) NOREPLICAS") {
		t.Fatalf("SET after the replica left: %s", got)
	}
	// sync-replicas 0 turns it off at run time.
	steps(t, pc, "CONFIG SET sync-replicas 0", "OK", "SET e 1", "OK")
}

// TestSyncReplicasMemcached: a memcached write that sync-replicas could
// not confirm gets SERVER_ERROR NOREPLICAS and the connection closes.
func TestSyncReplicasMemcached(t *testing.T) {
	mport := tu.FreePort(t)
	p := startNode(t, t.TempDir(), nil, "sync-replicas", "1", "sync-timeout", "100", "memcached-port", strconv.Itoa(mport))
	defer closeAll(p)
	m := mcDial(t, "127.0.0.1:"+strconv.Itoa(mport))
	m.c.SetDeadline(time.Now().Add(10 * time.Second))
	m.c.Write([]byte("set k 0 0 1\r\nv\r\n"))
	l, err := m.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "SERVER_ERROR NOREPLICAS") {
		t.Fatalf("memcached set without replicas: %q %v", l, err)
	}
	if _, err := m.r.ReadString('\n'); err == nil {
		t.Fatal("the connection stayed open after the error")
	}
}

// TestSyncReplicasReleasedByLateReplica: writes waiting for a replica are
// acknowledged when one attaches within sync-timeout.
func TestSyncReplicasReleasedByLateReplica(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "sync-replicas", "1", "sync-timeout", "60000")
	var r *node
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	pc.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n"))
	waitUntil(t, "the write to be applied", func() bool { return p.srv.ReplOffset() >= 1 })
	r = replicaOf(t, t.TempDir(), p)
	rp, err := pc.Read()
	if err != nil || rp.String() != "OK" {
		t.Fatalf("held SET: %v %v", rp, err)
	}
}

// TestReplicaRefusesWrites: over RESP and memcached, a replica refuses
// writes and serves reads; expired keys read as missing on it but stay
// until the primary's delete arrives.
func TestReplicaRefusesWrites(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	mport := tu.FreePort(t)
	r := replicaOf(t, t.TempDir(), p, "memcached-port", strconv.Itoa(mport))
	defer func() { closeAll(p, r) }()
	pc := tu.Dial(t, p.addr)
	steps(t, pc, "SET k v", "OK")
	waitCaughtUp(t, p, r)
	rc := tu.Dial(t, r.addr)
	steps(t, rc,
		"GET k", `"v"`,
		"SET k w", "(error) READONLY You can't write against a read only replica.",
		"DEL k", "(error) READONLY You can't write against a read only replica.",
		"ROLE", fmt.Sprintf(`["slave" "127.0.0.1" (integer) %s "connected" (integer) %d]`, portOf(p), p.srv.ReplOffset()))
	m := mcDial(t, "127.0.0.1:"+strconv.Itoa(mport))
	mcRun(t, m, []mcCase{
		{"get k\r\n", "VALUE k 0 1|v|END|"},
		{"set k 0 0 1\r\nw\r\n", "SERVER_ERROR READONLY You can't write against a read only replica.|"},
		{"delete k\r\n", "SERVER_ERROR READONLY You can't write against a read only replica.|"},
	})
	// Expiry: the replica hides the expired key but keeps it until the
	// primary's DEL (active expiry off on the primary, so it is lazy).
	steps(t, pc, "DEBUG SET-ACTIVE-EXPIRE 0", "OK", "SET e 1 PX 30", "OK")
	waitCaughtUp(t, p, r)
	time.Sleep(40 * time.Millisecond) // the key's own expiry: a wall-clock time
	steps(t, rc, "GET e", "(nil)", "EXISTS e", "(integer) 0")
	if got := rc.Do("DBSIZE"); got != "(integer) 2" {
		t.Fatalf("DBSIZE on the replica before the primary deleted: %s", got)
	}
	steps(t, pc, "GET e", "(nil)") // the primary expires it and sends DEL
	waitCaughtUp(t, p, r)
	steps(t, rc, "DBSIZE", "(integer) 1")
	sameData(t, p, r)
}

// TestPsyncBadInput: PSYNC with garbage gets an error and leaves the
// connection usable; unknown REPLCONF options are refused.
func TestPsyncBadInput(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	defer closeAll(p)
	c := tu.Dial(t, p.addr)
	steps(t, c,
		"PSYNC", "(error) ERR wrong number of arguments for 'psync' command",
		"PSYNC abc 1", "(error) ERR PSYNC expects a 40-character replication id (or ?) and an offset",
		"PSYNC ? x", "(error) ERR PSYNC expects a 40-character replication id (or ?) and an offset",
		"PSYNC ? -5", "(error) ERR PSYNC expects a 40-character replication id (or ?) and an offset",
		"REPLCONF listening-port x", "(error) ERR Invalid listening port",
		"REPLCONF bogus 1", "(error) ERR Unrecognized REPLCONF option: bogus",
		"REPLCONF listening-port", "(error) ERR syntax error",
		"REPLICAOF localhost 0", "(error) ERR Invalid master port",
		"PING", "PONG")
	// A "replica" that sends garbage after PSYNC is disconnected.
	g := tu.Dial(t, p.addr)
	g.Send([]byte("PSYNC ? -1\r\n"))
	g.R.ReadString('\n') // +FULLRESYNC
	g.Send([]byte("*1\r\n$5\r\nHELLO\r\n"))
	if !g.Closed(10 * time.Second) {
		t.Fatal("the primary kept a replica that sent garbage")
	}
	steps(t, c, "PING", "PONG")
}

// TestStalledReplicaIsDropped: a replica that stops reading is
// disconnected once the stream it has not read passes the replica output
// limit; other clients go on and the primary's memory stays bounded.
func TestStalledReplicaIsDropped(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "client-output-buffer-limit", "replica 4mb 2mb 1", "repl-backlog-size", "64mb")
	defer closeAll(p)
	stall, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	stall.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(stall, "PSYNC ? -1\r\n")
	pc := tu.Dial(t, p.addr)
	waitUntil(t, "the stalled replica to register", func() bool {
		return infoField(t, pc, "replication", "connected_slaves") == "1"
	})
	before := heapInUse()
	val := strings.Repeat("y", 4096)
	for i := 0; infoField(t, pc, "replication", "connected_slaves") != "0"; i++ {
		if i > 200_000 {
			t.Fatal("the stalled replica was never disconnected")
		}
		for j := 0; j < 100; j++ {
			pc.Send([]byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$%d\r\n%s\r\n", len(strconv.Itoa(j))+1, j, len(val), val)))
		}
		for j := 0; j < 100; j++ {
			if _, err := pc.Read(); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps(t, pc, "PING", "PONG")
	if grew := int64(heapInUse()) - int64(before); grew > 96<<20 {
		t.Fatalf("the heap grew by %d MB with a stalled replica (backlog 64 MB)", grew>>20)
	}
}

// TestChainedReplica: a replica of a replica gets the same stream.
func TestChainedReplica(t *testing.T) {
	p := startNode(t, t.TempDir(), nil)
	a := replicaOf(t, t.TempDir(), p)
	b := replicaOf(t, t.TempDir(), a)
	defer func() { closeAll(p, a, b) }()
	pc := tu.Dial(t, p.addr)
	rng := rand.New(rand.NewSource(5))
	for i := 0; i < 1000; i++ {
		pc.Do(randomWrite(rng, i)...)
	}
	waitCaughtUp(t, p, a)
	waitCaughtUp(t, a, b)
	sameData(t, p, b)
}

// TestMasterAuth: a replica of a primary with requirepass needs
// masterauth; without it the link stays down and says why.
func TestMasterAuth(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "requirepass", "s3cret")
	bad := replicaOf(t, t.TempDir(), p)
	good := replicaOf(t, t.TempDir(), p, "masterauth", "s3cret")
	defer func() { closeAll(p, bad, good) }()
	pc := tu.Dial(t, p.addr)
	steps(t, pc, "AUTH s3cret", "OK", "SET k v", "OK")
	gc := tu.Dial(t, good.addr)
	waitUntil(t, "the authenticated replica to sync", func() bool {
		return infoField(t, gc, "replication", "master_link_status") == "up" && gc.Do("GET", "k") == `"v"`
	})
	bc := tu.Dial(t, bad.addr)
	wantInfo(t, bc, "replication", "master_link_status", "down")
	wantInfo(t, pc, "replication", "connected_slaves", "1")
}

// TestPrimaryRestartFromSnapshotKeepsReplicaWhole: a primary restarted
// from a snapshot only (no log) offers its previous id to returning
// replicas; writes made before they return must reach them.
func TestPrimaryRestartFromSnapshotKeepsReplicaWhole(t *testing.T) {
	pdir, rdir := t.TempDir(), t.TempDir()
	p := startNode(t, pdir, nil, "save", "3600 1")
	r := replicaOf(t, rdir, p, "appendonly", "yes")
	pc := tu.Dial(t, p.addr)
	steps(t, pc, "SET a 1", "OK", "SET b 2", "OK")
	waitCaughtUp(t, p, r)
	steps(t, pc, "SAVE", "OK")
	port := portOf(p)
	closeAll(r, p)
	p = startNode(t, pdir, nil, "save", "3600 1", "port", port)
	p.addr = "127.0.0.1:" + port // the port directive overrides the one startNode picked
	pc = tu.Dial(t, p.addr)
	steps(t, pc, "SET c 3", "OK", "DEL a", "(integer) 1") // before the replica is back
	r = replicaOf(t, rdir, p, "appendonly", "yes")
	defer func() { closeAll(p, r) }()
	waitCaughtUp(t, p, r)
	sameData(t, p, r)
	rc := tu.Dial(t, r.addr)
	steps(t, rc, "GET c", `"3"`, "EXISTS a", "(integer) 0")
}

// TestMasterUser: masteruser + masterauth log the replica in as an ACL
// user that may run only what replication needs.
func TestMasterUser(t *testing.T) {
	p := startNode(t, t.TempDir(), nil, "requirepass", "s3cret",
		"user", "replicator on >rpw resetchannels -@all +replconf +psync +ping")
	r := replicaOf(t, t.TempDir(), p, "masteruser", "replicator", "masterauth", "rpw")
	wrongUser := replicaOf(t, t.TempDir(), p, "masteruser", "nobody", "masterauth", "rpw")
	defer func() { closeAll(p, r, wrongUser) }()
	pc := tu.Dial(t, p.addr)
	steps(t, pc, "AUTH s3cret", "OK", "SET k v", "OK")
	rc := tu.Dial(t, r.addr)
	waitUntil(t, "the replica logged in as replicator to sync", func() bool {
		return infoField(t, rc, "replication", "master_link_status") == "up" && rc.Do("GET", "k") == `"v"`
	})
	wc := tu.Dial(t, wrongUser.addr)
	wantInfo(t, wc, "replication", "master_link_status", "down")
	wantInfo(t, pc, "replication", "connected_slaves", "1")
}
