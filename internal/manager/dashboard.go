package manager

import (
	"embed"
	"io/fs"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"shoal/internal/cluster"
)

// The web dashboard (docs/operations.md, "The dashboard"): static files
// embedded in the binary and served by every manager at /dashboard/, and
// the JSON the page polls. The page's data is the leader's (only it hears
// heartbeats): a follower forwards GET /v1/dashboard and /v1/history to
// the leader like any leader-only call. The page's actions call the
// ordinary admin API (rebalance, drain, failover).
//
// Goroutine: historian (one per manager, sampling only while leader); it
// writes dash.hist and dash.moves under dash.mu, as the page's handler
// also updates dash.moves.

//go:embed web
var webFiles embed.FS

// Defaults for the history ring: one sample every 10 s for an hour.
const (
	defaultHistoryInterval = 10 * time.Second
	defaultHistorySamples  = 360
)

// dashState is the dashboard's memory on the leader. Guarded by mu (not
// Manager.mu: sampling reads the health view under Manager.mu first).
type dashState struct {
	mu    sync.Mutex
	hist  historyRing
	moves moveTracker
}

// dashboardRoutes serves the page's files on mux, and its data calls
// through register: the admin API's own registration, so that they get
// whatever the other /v1 endpoints get (authorization). The page's files
// need none: they hold no cluster data, and the page must load for the
// operator to type a token.
func (m *Manager) dashboardRoutes(mux *http.ServeMux, register func(pattern string, h http.HandlerFunc)) {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic("BUG: embedded dashboard files: " + err.Error())
	}
	files := http.StripPrefix("/dashboard/", http.FileServerFS(static))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard/", http.StatusFound)
	})
	mux.Handle("GET /dashboard/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page is small and changes with the binary: no stale copy
		// after an upgrade.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	register("GET /v1/dashboard", m.leaderOnly(m.handleDashboard))
	register("GET /v1/history", m.leaderOnly(m.handleHistory))
}

// ---- history ----------------------------------------------------------

// ShardSample is one shard's load in a history sample: the sum of its
// nodes' ops/s (replicas serve reads too), its primary's memory and keys.
type ShardSample struct {
	Shard      int     `json:"shard"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	UsedMemory int64   `json:"used_memory"`
	Keys       int64   `json:"keys"`
}

// HistorySample is the cluster's load at one time.
type HistorySample struct {
	Time   time.Time     `json:"time"`
	Shards []ShardSample `json:"shards"`
}

// History is GET /v1/history: the samples, oldest first.
type History struct {
	IntervalMs int64           `json:"interval_ms"`
	Capacity   int             `json:"capacity"`
	Samples    []HistorySample `json:"samples"`
}

// historyRing keeps the last size samples; memory is bounded by the
// ring's size whatever the uptime.
type historyRing struct {
	size int
	buf  []HistorySample // allocated at the first sample
	next int             // where the next sample goes
	n    int             // samples held
}

func (r *historyRing) add(s HistorySample) {
	if r.buf == nil {
		r.buf = make([]HistorySample, r.size)
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// all returns the samples, oldest first.
func (r *historyRing) all() []HistorySample {
	out := make([]HistorySample, 0, r.n)
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)])
	}
	return out
}

// historian samples the shards' load every HistoryInterval while this
// manager leads, and shows the move tracker every version of the map, so
// that a move queued and finished between two polls of the page still
// counts in its batch.
func (m *Manager) historian() {
	defer m.wg.Done()
	m.dash.mu.Lock()
	m.dash.hist.size = m.cfg.HistorySamples
	m.dash.mu.Unlock()
	tick := time.NewTicker(m.cfg.HistoryInterval)
	defer tick.Stop()
	for {
		// The channel first, then the map: a change after the read
		// closes the channel.
		changed := m.fsm.next()
		mp := m.Map()
		m.dash.mu.Lock()
		m.dash.moves.update(mp)
		m.dash.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-changed:
		case now := <-tick.C:
			if !m.leading() {
				continue
			}
			s := m.sample(now, mp)
			m.dash.mu.Lock()
			m.dash.hist.add(s)
			m.dash.mu.Unlock()
		}
	}
}

// sample reads the leader's health view: nodes not heard from within a
// lease count for nothing.
func (m *Manager) sample(now time.Time, mp *cluster.Map) HistorySample {
	alive := time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	s := HistorySample{Time: now, Shards: []ShardSample{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range mp.ShardIDs() {
		sh := mp.Shards[id]
		ss := ShardSample{Shard: id}
		for _, n := range append([]string{sh.Primary}, sh.Replicas...) {
			h := m.health[n]
			if h == nil || now.Sub(h.Seen) >= alive {
				continue
			}
			ss.OpsPerSec += h.HB.OpsPerSec
			if n == sh.Primary {
				ss.UsedMemory, ss.Keys = h.HB.UsedMemory, h.HB.Keys
			}
		}
		s.Shards = append(s.Shards, ss)
	}
	return s
}

func (m *Manager) history() History {
	m.dash.mu.Lock()
	defer m.dash.mu.Unlock()
	return History{IntervalMs: m.cfg.HistoryInterval.Milliseconds(), Capacity: m.cfg.HistorySamples, Samples: m.dash.hist.all()}
}

func (m *Manager) handleHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.history())
}

// ---- moves in progress -----------------------------------------------

// MoveGroup is the progress of the slot moves from one shard to another:
// Total counts every move seen since the group last had none, Done those
// that have left the map since (finished or cancelled).
type MoveGroup struct {
	From    int    `json:"from"`
	To      int    `json:"to"`
	Total   int    `json:"total"`
	Done    int    `json:"done"`
	Copying int    `json:"copying"`
	Cutover int    `json:"cutover"`
	Paused  int    `json:"paused"`
	Retried int    `json:"retried"`              // moves on a second or later attempt
	Error   string `json:"last_error,omitempty"` // one move's last error
}

// moveTracker remembers which slots each (from, to) group has had in the
// map since it was last empty: the map holds only the moves left, a
// progress bar needs the batch's size too.
type moveTracker struct {
	seen map[[2]int]*seenSlots
}

// seenSlots is a group's slots seen, as a bitmap and its count (a map of
// 16384 slots cost the leader a map write per slot at every epoch of a
// rebalance).
type seenSlots struct {
	bits [cluster.NumSlots / 64]uint64
	n    int
}

func (t *moveTracker) update(mp *cluster.Map) {
	if t.seen == nil {
		t.seen = map[[2]int]*seenSlots{}
	}
	live := map[[2]int]bool{}
	var last [2]int
	var g *seenSlots
	for s, mg := range mp.Migrations {
		k := [2]int{mg.From, mg.To}
		if g == nil || k != last {
			live[k] = true
			if g = t.seen[k]; g == nil {
				g = &seenSlots{}
				t.seen[k] = g
			}
			last = k
		}
		if w, b := s/64, uint64(1)<<(s%64); g.bits[w]&b == 0 {
			g.bits[w] |= b
			g.n++
		}
	}
	for k := range t.seen {
		if !live[k] {
			delete(t.seen, k)
		}
	}
}

func (t *moveTracker) groups(mp *cluster.Map) []MoveGroup {
	by := map[[2]int]*MoveGroup{}
	for _, mg := range mp.SortedMigrations() {
		k := [2]int{mg.From, mg.To}
		g := by[k]
		if g == nil {
			g = &MoveGroup{From: mg.From, To: mg.To}
			if seen := t.seen[k]; seen != nil {
				g.Total = seen.n
			}
			by[k] = g
		}
		switch {
		case mg.Paused:
			g.Paused++
		case mg.State == cluster.MigrateCutover:
			g.Cutover++
		default:
			g.Copying++
		}
		if mg.Attempts > 1 {
			g.Retried++
		}
		if mg.Error != "" {
			g.Error = mg.Error
		}
	}
	out := make([]MoveGroup, 0, len(by))
	for _, g := range by {
		g.Done = max(0, g.Total-g.Copying-g.Cutover-g.Paused)
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// ---- the page's poll --------------------------------------------------

// Dashboard is GET /v1/dashboard: everything the page shows but the
// history, in one leader-consistent reply.
type Dashboard struct {
	Time      time.Time           `json:"time"`
	Status    Status              `json:"status"`
	Moves     []MoveGroup         `json:"moves"`
	Autoscale []AutoscaleDecision `json:"autoscale"` // the last decisions, oldest first
	// Heat is the slot map as runs [first, last, shard, ops/s] of
	// consecutive slots with one owner and one load (ops/s rounded to
	// 0.01; -1: the owner's load is not known). Migrating lists the
	// slots being moved as [slot, target shard].
	Heat      [][4]float64 `json:"heat"`
	Migrating [][2]int     `json:"migrating"`
}

// maxDashDecisions bounds the autoscaling decisions the page gets.
const maxDashDecisions = 20

func (m *Manager) dashboard() Dashboard {
	st := m.status()
	mp := m.Map()
	as := m.autoscaleStatus()
	load, slots, _ := m.shardLoadsMeasured(mp)
	m.dash.mu.Lock()
	m.dash.moves.update(mp)
	moves := m.dash.moves.groups(mp)
	m.dash.mu.Unlock()
	d := Dashboard{Time: time.Now(), Status: st, Moves: moves,
		Autoscale: as.Decisions[max(0, len(as.Decisions)-maxDashDecisions):],
		Heat:      heatRuns(mp, load, slots), Migrating: make([][2]int, 0, len(mp.Migrations))}
	for _, mg := range mp.SortedMigrations() {
		d.Migrating = append(d.Migrating, [2]int{mg.Slot, mg.To})
	}
	return d
}

// heatRuns run-length encodes (owner, load) over the slots: a shard's
// unmeasured slots share one spread value, so the runs are few.
func heatRuns(mp *cluster.Map, shards map[int]cluster.ShardLoad, load cluster.SlotLoad) [][4]float64 {
	out := [][4]float64{}
	for s := 0; s < cluster.NumSlots; s++ {
		owner := float64(mp.Slots[s])
		ops := -1.0
		if _, known := shards[int(mp.Slots[s])]; known {
			ops = math.Round(load[s]*100) / 100
		}
		if n := len(out); n > 0 && out[n-1][2] == owner && out[n-1][3] == ops {
			out[n-1][1] = float64(s)
			continue
		}
		out = append(out, [4]float64{float64(s), float64(s), owner, ops})
	}
	return out
}

func (m *Manager) handleDashboard(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.dashboard())
}
