// Package testutil starts storage nodes in-process for tests and talks to
// them with a minimal RESP client that renders replies as text.
package testutil

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/config"
	"shoal/internal/resp"
	"shoal/internal/server"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Node is a running in-process server.
type Node struct {
	Srv  *server.Server
	Addr string
	Cfg  *config.Config
}

// StartServer starts a server on a free loopback port with extra
// directives ("maxmemory", "1mb", ...) and stops it when the test ends.
// Its dir is a fresh temporary directory unless directives set one, so
// snapshots never land in (or load from) the package's directory.
func StartServer(t testing.TB, directives ...string) *Node {
	t.Helper()
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		cfg := config.Default()
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir}
		for i := 0; i+1 < len(directives); i += 2 {
			args = append(args, "--"+directives[i], directives[i+1])
		}
		if err := cfg.ParseArgs(args); err != nil {
			if attempt < 5 && strings.Contains(err.Error(), "must differ from port") {
				continue // the free port picked equals the memcached port given
			}
			t.Fatalf("config: %v", err)
		}
		log := slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		srv, err := server.New(cfg, log)
		if err != nil {
			t.Fatalf("new server: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
				continue
			}
			t.Fatalf("start server: %v", err)
		}
		t.Cleanup(func() { srv.Close() })
		return &Node{Srv: srv, Addr: "127.0.0.1:" + strconv.Itoa(port), Cfg: cfg}
	}
}

// Conn is a raw RESP connection.
type Conn struct {
	t testing.TB
	C net.Conn
	R *bufio.Reader
}

// Dial connects to addr and closes the connection when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, C: c, R: bufio.NewReader(c)}
}

// Do sends one command and returns the reply rendered by resp.Reply.String.
func (c *Conn) Do(args ...string) string {
	c.t.Helper()
	r, err := c.DoReply(args...)
	if err != nil {
		c.t.Fatalf("%v: %v", args, err)
	}
	return r.String()
}

// DoReply sends one command and returns the decoded reply.
func (c *Conn) DoReply(args ...string) (resp.Reply, error) {
	if _, err := c.C.Write(resp.AppendCommand(nil, args...)); err != nil {
		return resp.Reply{}, err
	}
	return c.Read()
}

// Read reads one reply (10 s deadline).
func (c *Conn) Read() (resp.Reply, error) {
	c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.C.SetReadDeadline(time.Time{})
	return resp.ReadReply(c.R, 0)
}

// Send writes raw bytes.
func (c *Conn) Send(b []byte) {
	c.t.Helper()
	if _, err := c.C.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Closed reports whether the server closed the connection within d
// (reading and discarding anything it still sends).
func (c *Conn) Closed(d time.Duration) bool {
	c.C.SetReadDeadline(time.Now().Add(d))
	defer c.C.SetReadDeadline(time.Time{})
	_, err := io.Copy(io.Discard, c.C)
	return err == nil // EOF from the server ends io.Copy with nil
}

// Case is one step of a table test: a command and its expected rendering.
type Case struct {
	Cmd  []string
	Want string
}

// Run executes cases in order on conn and reports mismatches.
func Run(t *testing.T, conn *Conn, cases []Case) {
	t.Helper()
	for i, tc := range cases {
		got := conn.Do(tc.Cmd...)
		if got != tc.Want {
			t.Errorf("step %d %q:\n got  %s\n want %s", i, tc.Cmd, got, tc.Want)
		}
	}
}

// C builds a command from a space-separated string (no quoting).
func C(s string) []string { return strings.Fields(s) }

var _ = fmt.Sprintf
