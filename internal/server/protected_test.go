package server

import (
	"net"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"shoal/internal/config"
)

// fakeConn is just enough of a gnet.Conn for OnOpen.
type fakeConn struct {
	gnet.Conn
	remote, local net.Addr
	ctx           any
}

func (f *fakeConn) RemoteAddr() net.Addr      { return f.remote }
func (f *fakeConn) LocalAddr() net.Addr       { return f.local }
func (f *fakeConn) SetContext(v any)          { f.ctx = v }
func (f *fakeConn) Context() any              { return f.ctx }
func (f *fakeConn) EventLoop() gnet.EventLoop { return nil }

func TestProtectedMode(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 6379}
	remote := &net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 40000}
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40001}
	for _, tc := range []struct {
		name      string
		args      []string
		from      net.Addr
		wantClose bool
	}{
		{"remote refused without password", nil, remote, true},
		{"loopback accepted", nil, loop, false},
		{"remote accepted with password", []string{"--requirepass", "pw"}, remote, false},
		{"remote accepted with protected-mode no", []string{"--protected-mode", "no"}, remote, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if err := cfg.ParseArgs(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, action := s.OnOpen(&fakeConn{remote: tc.from, local: local})
			closed := action == gnet.Close
			if closed != tc.wantClose {
				t.Fatalf("closed=%v, want %v (reply %q)", closed, tc.wantClose, out)
			}
			if closed && !strings.HasPrefix(string(out), "-DENIED Running in protected mode") {
				t.Fatalf("reply %q", out)
			}
		})
	}
}

// A TLS client relayed over loopback (tls.go) is judged by its own
// address: protected-mode refuses a remote one, and CLIENT LIST would
// show it.
func TestProtectedModeTLSRelay(t *testing.T) {
	s, err := New(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFront{s: s, conns: map[net.Conn]struct{}{}}
	s.tls.Store(f)
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 6379}
	relay := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40100}
	f.peers.Store(relay.String(), net.Addr(&net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 50000}))
	out, action := s.OnOpen(&fakeConn{remote: relay, local: local})
	if action != gnet.Close || !strings.HasPrefix(string(out), "-DENIED Running in protected mode") {
		t.Fatalf("remote TLS client through the relay: %v %q", action, out)
	}
	loopRelay := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40101}
	f.peers.Store(loopRelay.String(), net.Addr(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 50001}))
	fc := &fakeConn{remote: loopRelay, local: local}
	if _, action := s.OnOpen(fc); action == gnet.Close {
		t.Fatal("a loopback TLS client was refused")
	}
	if cl, _ := fc.ctx.(*Client); cl == nil || cl.addr != "127.0.0.1:50001" {
		t.Fatalf("client address %+v", fc.ctx)
	}
}
