package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
)

// TestMapLongPollOutlastsClientTimeout: a long poll that the manager
// answers after longer than the HTTP client's own time limit (but within
// its wait) succeeds; the limit counts from the end of the wait.
func TestMapLongPollOutlastsClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			<-release // the map changes only after the client's timeout
		}
		m := cluster.NewMap()
		m.Epoch = 7
		json.NewEncoder(w).Encode(m)
	}))
	defer srv.Close()
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"))
	c.HTTP = &http.Client{Timeout: 100 * time.Millisecond}
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(release)
	}()
	m, err := c.Map(context.Background(), 6, 30*time.Second)
	if err != nil || m.Epoch != 7 {
		t.Fatalf("long poll: %v, %v", m, err)
	}
}
