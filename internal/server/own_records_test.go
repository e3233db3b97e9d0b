package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/config"
)

// startOwnRecordsNode starts a server with appendonly on in dir, plus
// directives ("replicaof", "127.0.0.1 6379", ...).
func startOwnRecordsNode(t *testing.T, dir string, directives ...string) (*Server, string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes"}
		for i := 0; i+1 < len(directives); i += 2 {
			args = append(args, "--"+directives[i], directives[i+1])
		}
		if err := cfg.ParseArgs(args); err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 {
				continue // the port was taken meanwhile
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, "127.0.0.1:" + strconv.Itoa(port)
	}
}

func portOfAddr(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func waitOwnRecords(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The cause of a slot move's replica divergence (TestSlotMoveCrashes,
// the target's primary killed), step by step. P, the target's primary,
// imports a slot and R, its replica, follows it; P dies with records R
// never received. The map names R primary, and R begins to import the
// slot again at once, but it acts as primary only on its lease: until
// then it is a replica, whose log continues P's stream under P's
// replication id. Had it journaled the import's writes (the drop of its
// partial copy, the puts) it would have put records of its own at the
// offsets where P has its lost ones, and taken them into the id2 range
// it keeps for P's history when promoted: P, back as R's replica, then
// resumed incrementally after its own records, never got R's at those
// offsets, and kept a different copy of the slot for good. A replica
// writes no record of its own: the import waits until the node acts as
// primary, and P then needs (and gets) a full copy.
func TestReplicaWritesNoRecordOfItsOwn(t *testing.T) {
	pDir := t.TempDir()
	p, pAddr := startOwnRecordsNode(t, pDir)
	r, rAddr := startOwnRecordsNode(t, t.TempDir(), "replicaof", "127.0.0.1 "+portOfAddr(pAddr))
	pc := redis.NewClient(&redis.Options{Addr: pAddr})
	defer pc.Close()
	ctx := context.Background()
	const tag = "{mv}"
	slot := cluster.SlotString(tag)
	for i := 0; i < 5; i++ {
		if err := pc.Set(ctx, tag+"k"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitOwnRecords(t, "R to catch up", func() bool { return r.lastLSN() == p.lastLSN() && r.lastLSN() > 0 })

	// The map names R primary: it stops following P (agent.install)...
	r.repl.mu.Lock()
	l := r.repl.link
	r.repl.link = nil
	r.repl.mu.Unlock()
	l.stop()
	// ... which dies with records R never got.
	for i := 0; i < 2; i++ {
		if err := pc.Set(ctx, tag+"lost"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	// R's import, before R acts as primary: it waits, and what it would
	// write is refused.
	acting := r.actingPrimary()
	select {
	case <-acting:
		t.Fatal("a replica acts as primary")
	default:
	}
	before := r.lastLSN()
	if r.dropUnowned(slot, "an import begins") {
		t.Error("a replica dropped a slot")
	}
	put := [][]byte{[]byte("set"), []byte(tag + "imported"), []byte("v")}
	if err := r.replayEffect(&replayState{cl: r.replayClient(), journal: true}, 0, slot, put); err != errNotActingPrimary {
		t.Errorf("a replica's import write: %v, want errNotActingPrimary", err)
	}
	if r.lastLSN() != before {
		t.Errorf("the replica wrote records of its own: offset %d, then %d", before, r.lastLSN())
	}

	// R acts as primary (its lease): the import goes on, as R's own
	// writes under R's new id.
	r.becomePrimary()
	select {
	case <-acting:
	case <-time.After(10 * time.Second):
		t.Fatal("the promotion did not release the import")
	}
	if !r.dropUnowned(slot, "an import begins") {
		t.Fatal("the primary did not drop the slot")
	}
	if err := r.replayEffect(&replayState{cl: r.replayClient(), journal: true}, 0, slot, put); err != nil {
		t.Fatal(err)
	}

	// P returns as R's replica, from its own log: it has records R
	// lacks, so it must take a full copy, and then equals R.
	p2, _ := startOwnRecordsNode(t, pDir, "replicaof", "127.0.0.1 "+portOfAddr(rAddr))
	waitOwnRecords(t, "P to follow R", func() bool {
		p2.repl.mu.Lock()
		l := p2.repl.link
		p2.repl.mu.Unlock()
		return l != nil && l.upSince.Load() != 0 && p2.lastLSN() == r.lastLSN()
	})
	for i := 0; i < cluster.NumSlots; i++ {
		r.db.Lock(i)
		a, n := r.db.Digest(r.db.Slot(i)), r.db.Slot(i).Len()
		r.db.Unlock(i)
		p2.db.Lock(i)
		b, m := p2.db.Digest(p2.db.Slot(i)), p2.db.Slot(i).Len()
		p2.db.Unlock(i)
		if a != b || n != m {
			t.Fatalf("slot %d: the returned node holds %d keys (digest %016x), its primary %d (%016x)", i, m, b, n, a)
		}
	}
	if n := r.repl.syncFull.Load(); n != 1 {
		t.Errorf("R served %d full copies, want 1 (to P, back with records R lacks)", n)
	}
}
