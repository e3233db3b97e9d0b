package manager

import (
	"context"
	"strings"
	"testing"

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
