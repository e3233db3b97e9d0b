package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/manager"
	"shoal/internal/resp"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// Protocol versions: mixed-version clusters without a second build, by
// making in-process nodes claim another protocol (server.Options).

// logBuf collects a node's log lines (written from its goroutines).
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOpts starts a server with options and its log (warnings and up)
// in w.
func startOpts(t *testing.T, opts server.Options, w io.Writer, directives ...string) *node {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := tu.FreePort(t)
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir()}
		args = append(args, directives...)
		if err := cfg.ParseArgs(args); err != nil {
			t.Fatal(err)
		}
		srv, err := server.NewWithOptions(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})), opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
				continue
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return &node{srv: srv, addr: "127.0.0.1:" + strconv.Itoa(port)}
	}
}

// TestReplicationProtocolVersions: a replica one protocol version newer
// than its primary replicates, and so does one older; a primary whose
// minimum is above a replica's version refuses it with a reason both log.
func TestReplicationProtocolVersions(t *testing.T) {
	next := server.Options{Protocol: cluster.ProtocolVersion + 1}
	for _, tc := range []struct {
		name             string
		primary, replica server.Options
	}{
		{"newer replica", server.Options{}, next},
		{"newer primary", next, server.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startOpts(t, tc.primary, io.Discard)
			r := startOpts(t, tc.replica, io.Discard, "--replicaof", "127.0.0.1 "+portOf(p))
			pc := tu.Dial(t, p.addr)
			for i := 0; i < 100; i++ {
				pc.Do("SET", fmt.Sprintf("k%d", i), strconv.Itoa(i))
			}
			waitCaughtUp(t, p, r)
			if got := tu.Dial(t, r.addr).Do("GET", "k99"); got != `"99"` {
				t.Fatalf("replica GET k99 = %q", got)
			}
		})
	}
	t.Run("replica below the primary's minimum", func(t *testing.T) {
		var plog, rlog logBuf
		p := startOpts(t, server.Options{MinReplicaProtocol: cluster.ProtocolVersion + 1}, &plog)
		startOpts(t, server.Options{}, &rlog, "--replicaof", "127.0.0.1 "+portOf(p))
		want := fmt.Sprintf("replica protocol version %d is below %d, the oldest this primary (shoal %s, protocol %d) streams to: upgrade the replica",
			cluster.ProtocolVersion, cluster.ProtocolVersion+1, server.ShoalVersion, cluster.ProtocolVersion)
		waitUntil(t, "the replica to log the refusal", func() bool { return strings.Contains(rlog.String(), want) })
		if !strings.Contains(plog.String(), "replica refused") {
			t.Errorf("the primary did not log the refusal:\n%s", plog.String())
		}
		if n := infoField(t, tu.Dial(t, p.addr), "replication", "connected_slaves"); n != "0" {
			t.Errorf("connected_slaves %s, want 0", n)
		}
		// A replica that never says its version (protocol 0) is refused at PSYNC.
		c := tu.Dial(t, p.addr)
		if got := c.Do("PSYNC", "?", "-1"); !strings.Contains(got, "replica protocol version 0 is below") {
			t.Errorf("PSYNC without REPLCONF version: %q", got)
		}
		if got := c.Do("REPLCONF", "version", "x"); !strings.Contains(got, "Invalid protocol version") {
			t.Errorf("REPLCONF version x: %q", got)
		}
	})
}

// TestClusterNodeOfNextProtocolJoins: a node of protocol N+1 joins a
// cluster of protocol N as a replica, the map records every node's
// version, and it replicates the shard's writes.
func TestClusterNodeOfNextProtocolJoins(t *testing.T) {
	c := newTCluster(t, 1, 1, 1)
	mc := c.client()
	ctx := context.Background()
	if _, err := mc.SetConfig(ctx, "replicas_per_shard", 2); err != nil {
		t.Fatal(err)
	}
	c.opts = map[string]server.Options{"new": {Protocol: cluster.ProtocolVersion + 1}}
	nn := c.startNode("new", t.TempDir(), 0)
	waitUntil(t, "the new node to join the shard", func() bool {
		st, err := mc.Status(ctx)
		return err == nil && len(st.Shards) == 1 && len(st.Shards[0].Replicas) == 2
	})
	c.waitHealthy()
	st := c.status()
	if len(st.Shards) != 1 || len(st.Shards[0].Replicas) != 2 {
		t.Fatalf("shards after the new node joined: %+v", st.Shards)
	}
	for _, n := range st.Nodes {
		want := cluster.ProtocolVersion
		if n.Addr == nn.addr {
			want++
		}
		if n.Protocol != want || n.Version != server.ShoalVersion {
			t.Errorf("node %s: version %q protocol %d, want %q %d", n.Addr, n.Version, n.Protocol, server.ShoalVersion, want)
		}
	}
	var primary *fnode
	for _, n := range c.nodes {
		if n.addr == st.Shards[0].Primary {
			primary = n
		}
	}
	for i := 0; i < 50; i++ {
		if err := primary.rdb.Set(ctx, fmt.Sprintf("v%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the new node to catch up", func() bool { return nn.srv.ReplOffset() == primary.srv.ReplOffset() })
	if got, err := nn.rdb.Get(ctx, "v49").Result(); err != nil || got != "49" {
		t.Fatalf("GET v49 on the new node: %q, %v", got, err)
	}
}

// TestManagerRefusesOldProtocol: a manager whose minimum is above a
// node's protocol refuses its heartbeats (it never enters the map) and
// the node logs why; a node of the minimum registers.
func TestManagerRefusesOldProtocol(t *testing.T) {
	min := cluster.ProtocolVersion + 1
	m, err := manager.New(manager.Config{ID: "m1", RaftAddr: freeTCP(t), HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(),
		Bootstrap: true, MinNodeProtocol: min})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	waitUntil(t, "the manager leads", func() bool { return m.IsLeader() })
	var oldLog logBuf
	old := startOpts(t, server.Options{}, &oldLog, "--manager", m.HTTPAddr())
	startOpts(t, server.Options{Protocol: min}, io.Discard, "--manager", m.HTTPAddr())
	want := fmt.Sprintf("speaks protocol %d; this cluster needs at least protocol %d (managers speak %d): upgrade the node",
		cluster.ProtocolVersion, min, cluster.ProtocolVersion)
	waitUntil(t, "the old node to log its refusal", func() bool {
		return strings.Contains(oldLog.String(), "the managers refuse this node") && strings.Contains(oldLog.String(), want)
	})
	waitUntil(t, "the new node to register", func() bool { return len(m.Map().Nodes) == 1 })
	for _, n := range m.Map().Nodes {
		if n.Addr == old.addr || n.Protocol != min {
			t.Fatalf("registered %+v, want only the node of protocol %d", n, min)
		}
	}
	// The API says the same to whoever asks.
	_, err = manager.NewClient(m.HTTPAddr()).Heartbeat(context.Background(), &cluster.Heartbeat{
		Node: cluster.Node{ID: "x", Addr: "127.0.0.1:1", Protocol: cluster.ProtocolVersion}})
	var ae *manager.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Msg, want) {
		t.Fatalf("heartbeat of an old protocol: %v", err)
	}
}

// fromProtocol0 sits between a replica and its primary and plays a
// protocol-0 build (from before versions) on one side: with oldPrimary it
// answers the replica's REPLCONF version as such a primary does (an
// unknown option); otherwise it swallows it with +OK, so the primary sees
// a replica that never says its version. Everything else is relayed.
func fromProtocol0(t *testing.T, primary string, oldPrimary bool) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			rc, err := ln.Accept()
			if err != nil {
				return
			}
			go relayOld(rc, primary, oldPrimary)
		}
	}()
	return ln.Addr().String()
}

func relayOld(rc net.Conn, primary string, oldPrimary bool) {
	defer rc.Close()
	pc, err := net.Dial("tcp", primary)
	if err != nil {
		return
	}
	defer pc.Close()
	rbr, pbr := bufio.NewReader(rc), bufio.NewReader(pc)
	for {
		cmd, err := resp.ReadReply(rbr, 0)
		if err != nil || len(cmd.Elems) == 0 {
			return
		}
		var args []string
		for _, e := range cmd.Elems {
			args = append(args, e.Str)
		}
		if strings.EqualFold(args[0], "replconf") && len(args) == 3 && strings.EqualFold(args[1], "version") {
			reply := "+OK\r\n"
			if oldPrimary {
				reply = "-ERR Unrecognized REPLCONF option: version\r\n"
			}
			if _, err := rc.Write([]byte(reply)); err != nil {
				return
			}
			continue
		}
		if _, err := pc.Write(resp.AppendCommand(nil, args...)); err != nil {
			return
		}
		if strings.EqualFold(args[0], "psync") || strings.EqualFold(args[0], "sync") {
			break // the stream follows: relay raw bytes both ways
		}
		line, err := pbr.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := rc.Write([]byte(line)); err != nil {
			return
		}
	}
	go func() { _, _ = io.Copy(pc, rbr); pc.Close() }()
	_, _ = io.Copy(rc, pbr)
}

// TestReplicationWithProtocol0: this build replicates from a primary of
// the builds before protocol versions, and streams to such a replica.
func TestReplicationWithProtocol0(t *testing.T) {
	for _, oldPrimary := range []bool{true, false} {
		name := "protocol-0 replica"
		if oldPrimary {
			name = "protocol-0 primary"
		}
		t.Run(name, func(t *testing.T) {
			p := startOpts(t, server.Options{}, io.Discard)
			relay := fromProtocol0(t, p.addr, oldPrimary)
			_, port, _ := net.SplitHostPort(relay)
			r := startOpts(t, server.Options{}, io.Discard, "--replicaof", "127.0.0.1 "+port)
			pc := tu.Dial(t, p.addr)
			for i := 0; i < 100; i++ {
				pc.Do("SET", fmt.Sprintf("k%d", i), strconv.Itoa(i))
			}
			waitCaughtUp(t, p, r)
			if got := tu.Dial(t, r.addr).Do("GET", "k99"); got != `"99"` {
				t.Fatalf("replica GET k99 = %q", got)
			}
		})
	}
}
