package manager

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/internal/testcert"
	"shoal/internal/tlsconf"
)

// TestManagerHTTPS: managers serving HTTPS (and a token); the second
// joins over HTTPS, a follower forwards to the leader over HTTPS, and
// clients must trust the managers' CA.
func TestManagerHTTPS(t *testing.T) {
	certs := testcert.New(t)
	srv, err := tlsconf.Server(certs.ServerCert, certs.ServerKey, "", "no")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := tlsconf.Client(certs.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ms := startManagersWith(t, 2, func(c *Config) { c.TLS, c.PeerTLS, c.AdminToken = srv, peer, "adm" })
	waitFor(t, "2 managers in the map", func() bool { return len(ms[0].Map().Managers) == 2 })
	var follower *Manager
	for _, m := range ms {
		if !m.IsLeader() {
			follower = m
		}
	}
	ctx := context.Background()
	c := clientOf(follower)
	c.Token, c.TLS = "adm", peer
	if _, err := c.SetConfig(ctx, "sync_replicas", 1); err != nil {
		t.Fatalf("config set over HTTPS through the follower: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || st == nil {
		t.Fatalf("status over HTTPS: %v", err)
	}
	plain := clientOf(follower)
	plain.Token, plain.Retry = "adm", -1
	if _, err := plain.Status(ctx); err == nil {
		t.Error("plain HTTP to an HTTPS manager succeeded")
	}
	other, err := tlsconf.Client(certs.OtherCA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	wrong := clientOf(follower)
	wrong.Token, wrong.TLS, wrong.Retry = "adm", other, -1
	if _, err := wrong.Status(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v", err)
	}
}

// TestRaftTLS: three managers whose Raft traffic runs over mutual TLS
// form one group and replicate a change; the Raft port refuses a peer
// without a client certificate signed by the managers' CA, and plain TCP.
func TestRaftTLS(t *testing.T) {
	certs := testcert.New(t)
	srv, err := tlsconf.Server(certs.ServerCert, certs.ServerKey, certs.CA, "yes")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := tlsconf.Client(certs.CA, certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ms := startManagersWith(t, 3, func(c *Config) { c.RaftTLS, c.RaftPeerTLS = srv, peer })
	waitFor(t, "3 managers in the map", func() bool { return len(ms[0].Map().Managers) == 3 })
	if _, err := clientOf(ms...).SetConfig(context.Background(), "sync_replicas", 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitFor(t, "the change on "+m.cfg.ID, func() bool { return m.Map().Settings.SyncReplicas == 1 })
	}
	// No client certificate: the handshake is refused (with TLS 1.3 the
	// refusal arrives on the first read).
	noCert, err := tlsconf.Client(certs.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := ms[1].cfg.RaftAddr
	if c, err := tls.Dial("tcp", raftAddr, noCert); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte{0})
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("the Raft port answered a peer without a client certificate")
		}
		c.Close()
	}
	// Plain TCP: the server expects a TLS handshake and drops it.
	c, err := net.Dial("tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("plain raft bytes\r\n\r\n"))
	if b, err := io.ReadAll(c); err == nil && len(b) > 0 && b[0] != 0x15 { // 0x15: a TLS alert
		t.Errorf("the Raft port answered plain TCP with %q", b)
	}
}
