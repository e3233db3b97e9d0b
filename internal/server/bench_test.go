package server

import (
	"fmt"
	"testing"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/resp"
)

// benchClient returns a server (not listening) and a client to dispatch on.
func benchClient(b *testing.B) (*Server, *Client) {
	s, err := New(config.Default(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cl := &Client{srv: s, shard: newStatShard(), proto: 2, authed: true}
	cl.w.Proto = 2
	return s, cl
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
	}
	return keys
}

func BenchmarkDispatchSet(b *testing.B) {
	s, cl := benchClient(b)
	keys := benchKeys(100000)
	args := [][]byte{[]byte("SET"), nil, []byte("xxx")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		s.dispatch(cl, args)
		cl.w.B = cl.w.B[:0]
	}
}

func BenchmarkDispatchGet(b *testing.B) {
	s, cl := benchClient(b)
	keys := benchKeys(100000)
	for _, k := range keys {
		s.dispatch(cl, [][]byte{[]byte("SET"), k, []byte("xxx")})
	}
	cl.w.B = cl.w.B[:0]
	args := [][]byte{[]byte("GET"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		s.dispatch(cl, args)
		cl.w.B = cl.w.B[:0]
	}
}

// BenchmarkDispatchGetCluster is BenchmarkDispatchGet in cluster mode,
// the node owning every slot: the cost of routing (no allocation).
func BenchmarkDispatchGetCluster(b *testing.B) {
	cfg := config.Default()
	cfg.ClusterEnabled = true
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := cluster.NewMap()
	if err := m.Apply(cluster.Command{Op: cluster.OpRegister, Node: &cluster.Node{ID: "self", Addr: "127.0.0.1:1"}}); err != nil {
		b.Fatal(err)
	}
	if err := m.Apply(cluster.Command{Op: cluster.OpCreate, Shards: 1}); err != nil {
		b.Fatal(err)
	}
	s.SetClusterMap(m, "self")
	cl := &Client{srv: s, shard: newStatShard(), proto: 2, authed: true}
	cl.w.Proto = 2
	keys := benchKeys(100000)
	for _, k := range keys {
		s.dispatch(cl, [][]byte{[]byte("SET"), k, []byte("xxx")})
	}
	cl.w.B = cl.w.B[:0]
	args := [][]byte{[]byte("GET"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		s.dispatch(cl, args)
		if cl.w.B[0] != '$' {
			b.Fatalf("GET: %q", cl.w.B)
		}
		cl.w.B = cl.w.B[:0]
	}
}

// BenchmarkParseDispatchGetP16 measures a pipelined batch of 16 GETs from
// bytes to replies, without the network.
func BenchmarkParseDispatchGetP16(b *testing.B) {
	s, cl := benchClient(b)
	keys := benchKeys(100000)
	for _, k := range keys {
		s.dispatch(cl, [][]byte{[]byte("SET"), k, []byte("xxx")})
	}
	var batches [][]byte
	for i := 0; i < 64; i++ {
		var buf []byte
		for j := 0; j < 16; j++ {
			buf = resp.AppendCommand(buf, "GET", string(keys[(i*16+j)*97%len(keys)]))
		}
		batches = append(batches, buf)
	}
	lim := s.limits.Load().proto
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf := batches[i%len(batches)]
		for off := 0; off < len(buf); {
			args, n, _, err := resp.Parse(buf[off:], cl.args[:0], lim)
			if err != nil || n == 0 {
				b.Fatal("parse", err)
			}
			cl.args = args
			off += n
			s.dispatch(cl, args)
		}
		cl.w.B = cl.w.B[:0]
	}
}

func BenchmarkDispatchIncr(b *testing.B) {
	s, cl := benchClient(b)
	keys := benchKeys(100000)
	for _, k := range keys {
		s.dispatch(cl, [][]byte{[]byte("SET"), k, []byte("1")})
	}
	cl.w.B = cl.w.B[:0]
	args := [][]byte{[]byte("INCR"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		s.dispatch(cl, args)
		cl.w.B = cl.w.B[:0]
	}
}

// BenchmarkDispatchGetACL is BenchmarkDispatchGet as a user limited to
// @read on key:* (the ACL slow path: command bit, key pattern).
func BenchmarkDispatchGetACL(b *testing.B) {
	s, cl := benchClient(b)
	keys := benchKeys(100000)
	for _, k := range keys {
		s.dispatch(cl, [][]byte{[]byte("SET"), k, []byte("xxx")})
	}
	if err := s.acl.SetUser("reader", []string{"on", "nopass", "~key:*", "+@read"}); err != nil {
		b.Fatal(err)
	}
	cl.user.Store(s.acl.Get("reader"))
	cl.w.B = cl.w.B[:0]
	args := [][]byte{[]byte("GET"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		s.dispatch(cl, args)
		if i == 0 && cl.w.B[0] != '$' {
			b.Fatalf("reply %q", cl.w.B)
		}
		cl.w.B = cl.w.B[:0]
	}
}

// BenchmarkReplayIncr is a replica applying its primary's INCR records
// (replayEffect, live): the per-record cost of the apply, without the
// stream's reading and decoding.
func BenchmarkReplayIncr(b *testing.B) {
	s, _ := benchClient(b)
	keys := benchKeys(100000)
	slots := make([]int, len(keys))
	rs := &replayState{cl: s.replayClient(), live: true}
	for i, k := range keys {
		slots[i] = cluster.Slot(k)
		if err := s.replayEffect(rs, uint64(i+1), slots[i], [][]byte{[]byte("SET"), k, []byte("1")}); err != nil {
			b.Fatal(err)
		}
	}
	args := [][]byte{[]byte("incr"), nil}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		args[1] = keys[i%len(keys)]
		if err := s.replayEffect(rs, uint64(len(keys)+i+1), slots[i%len(keys)], args); err != nil {
			b.Fatal(err)
		}
	}
}
