package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
)

func TestHistoryRingBounded(t *testing.T) {
	r := historyRing{size: 3}
	if got := r.all(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	t0 := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		r.add(HistorySample{Time: t0.Add(time.Duration(i) * time.Second)})
		want := min(i+1, 3)
		got := r.all()
		if len(got) != want {
			t.Fatalf("after %d adds: %d samples, want %d", i+1, len(got), want)
		}
		for j, s := range got {
			if wantT := t0.Add(time.Duration(i+1-want+j) * time.Second); !s.Time.Equal(wantT) {
				t.Fatalf("after %d adds: sample %d at %v, want %v (oldest first)", i+1, j, s.Time, wantT)
			}
		}
	}
}

func TestMoveTrackerProgress(t *testing.T) {
	mp := cluster.NewMap()
	mp.Migrations = map[int]*cluster.Migration{}
	for s := 0; s < 4; s++ {
		mp.Migrations[s] = &cluster.Migration{Slot: s, From: 1, To: 2, State: cluster.MigrateCopying}
	}
	mp.Migrations[10] = &cluster.Migration{Slot: 10, From: 2, To: 3, State: cluster.MigrateCutover, Attempts: 2, Error: "boom"}
	var tr moveTracker
	tr.update(mp)
	// Two of 1→2 finish, one is paused; a new one joins the batch.
	delete(mp.Migrations, 0)
	delete(mp.Migrations, 1)
	mp.Migrations[2].Paused = true
	mp.Migrations[5] = &cluster.Migration{Slot: 5, From: 1, To: 2, State: cluster.MigrateCutover}
	tr.update(mp)
	got := tr.groups(mp)
	want := []MoveGroup{
		{From: 1, To: 2, Total: 5, Done: 2, Copying: 1, Cutover: 1, Paused: 1},
		{From: 2, To: 3, Total: 1, Done: 0, Cutover: 1, Retried: 1, Error: "boom"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups:\n got %+v\nwant %+v", got, want)
	}
	// A group that empties is forgotten: the next batch counts afresh.
	mp.Migrations = map[int]*cluster.Migration{7: {Slot: 7, From: 1, To: 2, State: cluster.MigrateCopying}}
	tr.update(mp)
	mp.Migrations = nil
	tr.update(mp)
	mp.Migrations = map[int]*cluster.Migration{8: {Slot: 8, From: 1, To: 2, State: cluster.MigrateCopying}}
	tr.update(mp)
	if g := tr.groups(mp); len(g) != 1 || g[0].Total != 1 || g[0].Done != 0 {
		t.Fatalf("a new batch after an empty map: %+v", g)
	}
}

func TestHeatRuns(t *testing.T) {
	mp := cluster.NewMap()
	for s := 0; s < cluster.NumSlots; s++ {
		mp.Slots[s] = 1
		if s >= 8192 {
			mp.Slots[s] = 2
		}
	}
	mp.Slots[100] = 0
	shards := map[int]cluster.ShardLoad{1: {OpsPerSec: 10}} // shard 2 has not reported
	load := cluster.SlotLoad{5: 3.14159}
	got := heatRuns(mp, shards, load)
	want := [][4]float64{{0, 4, 1, 0}, {5, 5, 1, 3.14}, {6, 99, 1, 0}, {100, 100, 0, -1}, {101, 8191, 1, 0}, {8192, 16383, 2, -1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("runs:\n got %v\nwant %v", got, want)
	}
}

// TestDashboardOnFollower: every manager serves the page, and a
// follower forwards the page's data calls to the leader.
func TestDashboardOnFollower(t *testing.T) {
	ms := startManagers(t, 2)
	waitFor(t, "2 managers in the map, the follower knowing the leader", func() bool {
		return len(ms[1].Map().Managers) == 2 && ms[1].leaderHTTP() == ms[0].HTTPAddr()
	})
	n := &fakeNode{hb: cluster.Heartbeat{Node: cluster.Node{ID: "n1", Addr: "127.0.0.1:7001"}, OpsPerSec: 42, UsedMemory: 1 << 20}}
	if err := n.beat(context.Background(), clientOf(ms[1])); err != nil {
		t.Fatal(err)
	}
	base := "http://" + ms[1].HTTPAddr()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "<title>Shoal dashboard</title>") {
		t.Fatalf("GET / (redirected to the page): %d %.200s", code, body)
	}
	for _, f := range []string{"/dashboard/dash.js", "/dashboard/dash.css"} {
		if code, body := get(f); code != 200 || len(body) < 100 {
			t.Fatalf("GET %s: %d, %d bytes", f, code, len(body))
		}
	}
	if code, _ := get("/dashboard/nope.js"); code != 404 {
		t.Fatalf("GET a missing file: %d", code)
	}
	code, body := get("/v1/dashboard")
	var d Dashboard
	if err := json.Unmarshal([]byte(body), &d); code != 200 || err != nil {
		t.Fatalf("GET /v1/dashboard on a follower: %d %v %.200s", code, err, body)
	}
	if d.Status.Leader != "m1" || len(d.Status.Nodes) != 1 || d.Status.Nodes[0].OpsPerSec != 42 || len(d.Heat) == 0 {
		t.Fatalf("the follower's dashboard is not the leader's: %+v", d.Status)
	}
	code, body = get("/v1/history")
	var h History
	if err := json.Unmarshal([]byte(body), &h); code != 200 || err != nil || h.IntervalMs != 10000 || h.Capacity != 360 {
		t.Fatalf("GET /v1/history on a follower: %d %v %.200s", code, err, body)
	}
}
