package manager

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
)

func rawCall(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminToken: with --admin-token every /v1 endpoint needs it, the
// cluster token opens only the map and the heartbeat, /healthz stays
// open, and a follower forwards an authorized write to the leader with
// its token (a follower receiving it checks it too).
func TestAdminToken(t *testing.T) {
	ms := startManagersWith(t, 2, func(c *Config) { c.AdminToken, c.ClusterToken = "adm-secret", "clu-secret" })
	waitFor(t, "2 managers in the map", func() bool { return len(ms[0].Map().Managers) == 2 })
	base := "http://" + ms[0].HTTPAddr()
	for _, tc := range []struct {
		method, path, token string
		code                int
		body                string
	}{
		{"GET", "/healthz", "", 200, "ok"},
		{"GET", "/v1/status", "", 401, `"unauthorized: this manager requires a token: send \"Authorization: Bearer \u003ctoken\u003e\"`},
		{"GET", "/v1/status", "wrong", 401, `"unauthorized: the bearer token is not valid for GET /v1/status"`},
		{"GET", "/v1/status", "adm-secret", 200, `"healthy"`},
		{"GET", "/v1/status", "clu-secret", 401, "not valid"},
		{"PUT", "/v1/config", "clu-secret", 401, "not valid"},
		{"POST", "/v1/create", "", 401, "requires a token"},
		{"GET", "/v1/map", "", 401, "requires a token"},
		{"GET", "/v1/map", "clu-secret", 200, `"epoch"`},
		{"GET", "/v1/map", "adm-secret", 200, `"epoch"`},
		{"GET", "/v1/nosuch", "", 401, "requires a token"},
		{"GET", "/dashboard/", "", 200, "admin token"}, // the page is open (it asks for the token)
		{"GET", "/v1/dashboard", "", 401, "requires a token"},
		{"GET", "/v1/dashboard", "clu-secret", 401, "not valid"},
		{"GET", "/v1/dashboard", "adm-secret", 200, "{"},
		{"GET", "/v1/history", "", 401, "requires a token"},
		{"GET", "/v1/nosuch", "adm-secret", 404, "not found"},
	} {
		code, body := rawCall(t, tc.method, base+tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s (token %q): %d %s, want %d containing %s", tc.method, tc.path, tc.token, code, body, tc.code, tc.body)
		}
	}

	// The client: no token is a 401 at once (not retried), the cluster
	// token heartbeats, the admin token administers.
	var leader, follower *Manager
	for _, m := range ms {
		if m.IsLeader() {
			leader = m
		} else {
			follower = m
		}
	}
	ctx := context.Background()
	none := clientOf(follower)
	none.Retry = 5 * time.Second
	start := time.Now()
	_, err := none.Status(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("status without a token: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a 401 was retried for %v", time.Since(start))
	}
	node := clientOf(follower)
	node.Token = "clu-secret"
	n := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "n1", Addr: "127.0.0.1:7001"}}}
	if err := n.beat(ctx, node); err != nil {
		t.Fatalf("heartbeat with the cluster token through a follower: %v", err)
	}
	if _, err := node.SetConfig(ctx, "sync_replicas", 1); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("config set with the cluster token: %v", err)
	}
	op := clientOf(follower)
	op.Token = "adm-secret"
	if _, err := op.SetConfig(ctx, "sync_replicas", 1); err != nil {
		t.Fatalf("config set through the follower: %v", err)
	}
	waitFor(t, "the setting on the leader", func() bool { return leader.Map().Settings.SyncReplicas == 1 })
}

func TestClusterTokenNeedsAdminToken(t *testing.T) {
	_, err := New(Config{ID: "m1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(), ClusterToken: "x"})
	if err == nil || !strings.Contains(err.Error(), "needs an admin token") {
		t.Fatalf("New = %v", err)
	}
}
