package manager

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"shoal/internal/cluster"
)

// The HTTP JSON API (docs/manager.md). Reads of the map are served by any
// manager; everything else runs on the leader: a follower forwards the
// request to it.

const maxBody = 1 << 20

func (m *Manager) routes() http.Handler {
	mux := http.NewServeMux()
	// Every /v1 endpoint is authorized (when a token is configured)
	// before anything else, forwarding to the leader included: the
	// forwarded request keeps its Authorization header.
	admin := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, m.authorize(false, h)) }
	clus := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, m.authorize(true, h)) }
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	// /metrics and /readyz stay open, as /healthz (scrapers and probes).
	mux.Handle("GET /metrics", m.adm) // metrics.go
	mux.Handle("GET /readyz", m.adm)
	clus("GET /v1/map", m.handleMap)
	clus("POST /v1/heartbeat", m.leaderOnly(m.handleHeartbeat))
	admin("GET /v1/status", m.leaderOnly(m.handleStatus))
	admin("GET /v1/nodes", m.leaderOnly(m.handleNodes))
	admin("POST /v1/create", m.leaderOnly(m.handleCreate))
	admin("POST /v1/shards", m.leaderOnly(m.handleAddShard))
	admin("POST /v1/shards/{id}/failover", m.leaderOnly(m.handleFailover))
	admin("DELETE /v1/nodes/{id}", m.leaderOnly(m.handleRemoveNode))
	admin("GET /v1/config", m.handleConfigGet)
	admin("PUT /v1/config", m.leaderOnly(m.handleConfigSet))
	admin("POST /v1/join", m.leaderOnly(m.handleJoin))
	admin("POST /v1/migrations", m.leaderOnly(m.handleMigrate))
	admin("GET /v1/migrations", m.handleMigrations)
	admin("POST /v1/migrations/{action}", m.leaderOnly(m.handleMigrationAction))
	admin("POST /v1/migrator/{action}", m.leaderOnly(m.handleMigrator)) // standalone migrators: the admin token
	admin("POST /v1/rebalance", m.leaderOnly(m.handleRebalance))
	admin("POST /v1/shards/{id}/drain", m.leaderOnly(m.handleDrain))
	admin("PUT /v1/shards/{id}/weight", m.leaderOnly(m.handleSetWeight))
	admin("GET /v1/autoscale", m.leaderOnly(m.handleAutoscale))
	// Anything else under /v1 (a typo, a wrong method) answers 401 before
	// 404/405 to a client without the token: the API's shape is not
	// disclosed to it.
	mux.HandleFunc("/v1/", m.authorize(false, http.NotFound))
	// The dashboard's page is open; its data endpoints need the admin token.
	m.dashboardRoutes(mux, admin) // the web dashboard (dashboard.go)
	return mux
}

// authorize wraps h with the bearer-token check: the admin token, or for
// cluster endpoints (map, heartbeat) the cluster token too. Without an
// admin token configured the API is open (as before tokens existed).
func (m *Manager) authorize(clusterEndpoint bool, h http.HandlerFunc) http.HandlerFunc {
	if m.cfg.AdminToken == "" {
		return h
	}
	admin := []byte(m.cfg.AdminToken)
	var clus []byte
	if clusterEndpoint && m.cfg.ClusterToken != "" {
		clus = []byte(m.cfg.ClusterToken)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if ok && (subtle.ConstantTimeCompare(tok, admin) == 1 || clus != nil && subtle.ConstantTimeCompare(tok, clus) == 1) {
			h(w, r)
			return
		}
		msg := "unauthorized: this manager requires a token: send \"Authorization: Bearer <token>\" (shoal ctl --token or $SHOAL_TOKEN; shoal server/proxy --manager-token)"
		if ok {
			msg = "unauthorized: the bearer token is not valid for " + r.Method + " " + r.URL.Path
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="shoal-manager"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: msg})
	}
}

// bearerToken extracts the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) ([]byte, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, false
	}
	return []byte(strings.TrimSpace(h[len(prefix):])), true
}

type apiError struct {
	Error  string `json:"error"`
	Leader string `json:"leader,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (m *Manager) fail(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrNotLeader) {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, apiError{Error: err.Error(), Leader: m.leaderHTTP()})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return errors.New("bad request body: " + err.Error())
	}
	return nil
}

// leaderOnly runs h on the leader and forwards the request to the leader
// from a follower (once: a forwarded request is never forwarded again).
func (m *Manager) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if m.IsLeader() {
			h(w, r)
			return
		}
		leader := m.leaderHTTP()
		if leader == "" || r.Header.Get("X-Shoal-Forwarded") != "" {
			m.fail(w, ErrNotLeader)
			return
		}
		r.Header.Set("X-Shoal-Forwarded", m.cfg.ID)
		u := &url.URL{Scheme: "http", Host: leader}
		p := httputil.NewSingleHostReverseProxy(u)
		if pt := m.peerTLS(); pt != nil {
			u.Scheme = "https"
			p.Transport = m.forwardTransport(pt)
		}
		p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			writeJSON(w, http.StatusBadGateway, apiError{Error: "forwarding to the leader: " + err.Error(), Leader: leader})
		}
		p.ServeHTTP(w, r)
	}
}

// forwardTransport is the (one, reused) HTTPS transport to the leader.
func (m *Manager) forwardTransport(pt *tls.Config) http.RoundTripper {
	m.fwdOnce.Do(func() {
		m.fwd = &http.Transport{TLSClientConfig: pt, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 8}
	})
	return m.fwd
}

// handleMap returns the map; with ?epoch=E&wait=SECONDS it waits until
// the map's epoch passes E (long poll, at most 60 s).
func (m *Manager) handleMap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var view mapView
	switch q.Get("view") {
	case "":
	case "window":
		view = viewWindow // the moves under way only (cluster.Map.WindowView)
	case "routes":
		view = viewRoutes // no moves (cluster.Map.RoutesView)
	default:
		m.fail(w, errors.New("view must be window, routes or absent"))
		return
	}
	if q.Get("wait") == "" {
		m.writeMap(w, m.Map(), view)
		return
	}
	after, err1 := strconv.ParseUint(q.Get("epoch"), 10, 64)
	secs, err2 := strconv.ParseFloat(q.Get("wait"), 64)
	if err1 != nil || err2 != nil || secs < 0 || secs > 60 {
		m.fail(w, errors.New("wait needs epoch=N and wait=SECONDS (at most 60)"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(secs*float64(time.Second)))
	defer cancel()
	m.writeMap(w, m.fsm.wait(ctx, after), view)
}

// encodedMap is a map's JSON, kept for the next readers of the same map.
type encodedMap struct {
	m *cluster.Map
	b []byte
}

// mapView is what GET /v1/map serves of the map (?view=).
type mapView int

const (
	viewFull   mapView = iota // the whole map
	viewWindow                // the moves under way only: storage nodes, migrators
	viewRoutes                // no moves: proxies
	numViews
)

// writeMap sends view of mp as compact JSON, encoded once per map and
// view: every node, proxy and standalone migrator long-polls the map.
func (m *Manager) writeMap(w http.ResponseWriter, mp *cluster.Map, view mapView) {
	e, err := m.encodedMap(mp, view)
	if err != nil {
		m.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(e.b)
}

// encodedMap returns view of mp as JSON, encoded once: the long polls
// of every node, proxy and migrator wake together at a commit, and each
// encoded the map (up to 20 ms of CPU apiece for a window of 1024 moves
// on a busy 2-core machine).
func (m *Manager) encodedMap(mp *cluster.Map, view mapView) (*encodedMap, error) {
	cache := &m.mapJSON[view]
	if e := cache.Load(); e != nil && e.m == mp {
		return e, nil
	}
	m.encodeMu.Lock()
	defer m.encodeMu.Unlock()
	if e := cache.Load(); e != nil && e.m == mp {
		return e, nil // encoded while this one waited
	}
	v := mp
	switch view {
	case viewWindow:
		v = mp.WindowView()
	case viewRoutes:
		v = mp.RoutesView()
	}
	b, err := cluster.MarshalMap(v)
	if err != nil {
		return nil, err
	}
	e := &encodedMap{m: mp, b: append(b, '\n')}
	cache.Store(e)
	return e, nil
}

func (m *Manager) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb cluster.Heartbeat
	if err := decode(r, &hb); err != nil {
		m.fail(w, err)
		return
	}
	if hb.Node.ID == "" || hb.Node.Addr == "" {
		m.fail(w, errors.New("heartbeat needs node.id and node.addr"))
		return
	}
	reply, err := m.heartbeat(hb)
	if err != nil {
		m.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(reply)
}

// Status is GET /v1/status (and shoal ctl status --json).
type Status struct {
	Epoch     uint64            `json:"epoch"`
	Leader    string            `json:"leader"`
	Managers  map[string]string `json:"managers"`
	Healthy   bool              `json:"healthy"`
	Settings  cluster.Settings  `json:"settings"`
	Unowned   int               `json:"unassigned_slots"`
	Shards    []ShardStatus     `json:"shards"`
	Nodes     []NodeStatus      `json:"nodes"`
	Failovers []FailoverEvent   `json:"failovers"`
	// Standby is the pool: nodes in no shard (idle or standby), by id,
	// as RESP addresses.
	Standby   []string         `json:"standby"`
	Autoscale AutoscaleSummary `json:"autoscale"`
}

// AutoscaleSummary is the autoscaler's part of Status.
type AutoscaleSummary struct {
	Enabled  bool                `json:"enabled"`
	Kind     string              `json:"kind"`
	Reason   string              `json:"reason"`
	InFlight string              `json:"in_flight,omitempty"`
	Recent   []AutoscaleDecision `json:"recent"` // the last few decisions, oldest first
}

// ShardStatus is one shard in Status. Primary and Replicas are RESP
// addresses (host:port).
type ShardStatus struct {
	ID         int      `json:"id"`
	Epoch      uint64   `json:"epoch"`
	Primary    string   `json:"primary"`
	PrimaryID  string   `json:"primary_id"`
	Replicas   []string `json:"replicas"`
	ReplicaIDs []string `json:"replica_ids"`
	Slots      int      `json:"slots"`
	Weight     int      `json:"weight"`
	Draining   bool     `json:"draining,omitempty"`
	Healthy    bool     `json:"healthy"`
	State      string   `json:"state,omitempty"`
	Offset     uint64   `json:"offset"`
	// Lag of each replica in records behind the primary's last reported
	// offset, by node id (-1: not heard from).
	Lag map[string]int64 `json:"lag"`
}

// NodeStatus is one storage node in Status.
type NodeStatus struct {
	cluster.Node
	Role       string  `json:"role"`
	Alive      bool    `json:"alive"`
	LastSeenMs int64   `json:"last_seen_ms"` // -1: not heard from by this leader
	Offset     uint64  `json:"offset"`
	Synced     bool    `json:"synced"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	UsedMemory int64   `json:"used_memory"`
	Keys       int64   `json:"keys"`
}

// status builds the cluster's status from the map and the leader's health view.
func (m *Manager) status() Status {
	mp := m.Map()
	as := m.autoscaleStatus()
	summary := AutoscaleSummary{Enabled: as.Enabled, Kind: as.Kind, Reason: as.Reason, InFlight: as.InFlight,
		Recent: as.Decisions[max(0, len(as.Decisions)-5):]}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	_, states := Decide(mp, m.health, now, m.leaderSince)
	st := Status{Epoch: mp.Epoch, Leader: m.cfg.ID, Managers: mp.Managers, Settings: mp.Settings, Healthy: true,
		Shards: []ShardStatus{}, Nodes: []NodeStatus{}, Failovers: append([]FailoverEvent{}, m.failovers...),
		Standby: []string{}, Autoscale: summary}
	for _, n := range mp.Pool() {
		st.Standby = append(st.Standby, n.Addr)
	}
	st.Unowned = mp.Slots.Count(0)
	if len(mp.Shards) == 0 || st.Unowned > 0 {
		st.Healthy = false
	}
	alive := time.Duration(mp.Settings.LeaseMs) * time.Millisecond
	for i, id := range mp.ShardIDs() {
		s := mp.Shards[id]
		ss := ShardStatus{ID: id, Epoch: s.Epoch, Primary: mp.Addr(s.Primary), PrimaryID: s.Primary, Replicas: []string{}, ReplicaIDs: []string{},
			Slots: mp.Slots.Count(id), Weight: mp.ShardWeight(id), Draining: s.Draining, Healthy: states[i].Healthy, State: states[i].Reason, Lag: map[string]int64{}}
		if h := m.health[s.Primary]; h != nil {
			ss.Offset = h.HB.Offset
		}
		for _, r := range s.Replicas {
			ss.Replicas = append(ss.Replicas, mp.Addr(r))
			ss.ReplicaIDs = append(ss.ReplicaIDs, r)
			lag := int64(-1)
			if h := m.health[r]; h != nil && now.Sub(h.Seen) < alive {
				lag = max(0, int64(ss.Offset)-int64(h.HB.Offset))
			}
			ss.Lag[r] = lag
		}
		if !ss.Healthy {
			st.Healthy = false
		}
		st.Shards = append(st.Shards, ss)
	}
	for _, n := range mp.Nodes {
		ns := NodeStatus{Node: *n, LastSeenMs: -1}
		ns.Role, _ = mp.Role(n.ID)
		if h := m.health[n.ID]; h != nil {
			ns.LastSeenMs = now.Sub(h.Seen).Milliseconds()
			ns.Alive = now.Sub(h.Seen) < alive
			ns.Offset, ns.Synced = h.HB.Offset, h.HB.Synced
			ns.OpsPerSec, ns.UsedMemory, ns.Keys = h.HB.OpsPerSec, h.HB.UsedMemory, h.HB.Keys
		}
		st.Nodes = append(st.Nodes, ns)
	}
	sort.Slice(st.Nodes, func(i, j int) bool {
		a, b := st.Nodes[i], st.Nodes[j]
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		if a.Role != b.Role {
			return a.Role == cluster.RolePrimary
		}
		return a.ID < b.ID
	})
	return st
}

func (m *Manager) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.status())
}

// handleMigrate queues slot moves: {"slots": [..], "to": shard}.
func (m *Manager) handleMigrate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Slots []int `json:"slots"`
		To    int   `json:"to"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpMigrate, Slots: req.Slots, ShardID: req.To}); err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m.Map().SortedMigrations())
}

// handleMigrationAction pauses, resumes or cancels moves:
// POST /v1/migrations/{pause|resume|cancel} {"slots": [..]} or {"all": true}.
func (m *Manager) handleMigrationAction(w http.ResponseWriter, r *http.Request) {
	op := map[string]string{"pause": cluster.OpMigratePause, "resume": cluster.OpMigrateResume,
		"cancel": cluster.OpMigrateCancel}[r.PathValue("action")]
	if op == "" {
		m.fail(w, fmt.Errorf("unknown migrations action %q (pause, resume or cancel)", r.PathValue("action")))
		return
	}
	var req struct {
		Slots []int `json:"slots"`
		All   bool  `json:"all"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if req.All == (len(req.Slots) > 0) {
		m.fail(w, errors.New("give slots or all, not both"))
		return
	}
	if err := m.propose(cluster.Command{Op: op, Slots: req.Slots, All: req.All, Drop: op == cluster.OpMigrateCancel}); err != nil {
		m.fail(w, err)
		return
	}
	m.log.Info("slot moves "+r.PathValue("action")+"d", "slots", len(req.Slots), "all", req.All)
	writeJSON(w, http.StatusOK, m.Map().SortedMigrations())
}

// handleMigrations lists the moves in progress (any manager's map).
func (m *Manager) handleMigrations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.Map().SortedMigrations())
}

func (m *Manager) handleNodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.status().Nodes)
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Shards int `json:"shards"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpCreate, Shards: req.Shards}); err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m.status())
}

func (m *Manager) handleAddShard(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Nodes []string `json:"nodes"`
		// Rebalance queues the moves that give the new shard its weighted
		// share (only onto it: no other slot changes owner).
		Rebalance bool `json:"rebalance"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	ids, err := m.resolveNodes(req.Nodes)
	if err != nil {
		m.fail(w, err)
		return
	}
	from := "named"
	if len(ids) == 0 {
		// From the standby pool: a primary and replicas_per_shard replicas.
		if ids, err = m.poolShard(m.Map()); err != nil {
			m.fail(w, err)
			return
		}
		from = "standby pool"
	}
	id, n, err := m.addShardAndFill(ids, req.Rebalance)
	if err != nil {
		m.fail(w, err)
		return
	}
	m.decided(AutoscaleDecision{Time: time.Now(), Action: "add-shard", Shard: id, Nodes: m.addrs(ids), Moves: n,
		Reason: fmt.Sprintf("manual add-shard (shoal ctl add-shard) of %s nodes", from)})
	writeJSON(w, http.StatusOK, m.status())
}

// resolveNodes accepts node ids or RESP addresses.
func (m *Manager) resolveNodes(names []string) ([]string, error) {
	mp := m.Map()
	out := make([]string, 0, len(names))
	for _, n := range names {
		id, err := resolveNode(mp, n)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func resolveNode(mp *cluster.Map, name string) (string, error) {
	if mp.Nodes[name] != nil {
		return name, nil
	}
	for _, n := range mp.Nodes {
		if n.Addr == name {
			return n.ID, nil
		}
	}
	return "", errors.New("no node " + strconv.Quote(name) + " (give a node id or its RESP address)")
}

// handleSetWeight: {"weight": W} (0: the primary node's weight).
func (m *Manager) handleSetWeight(w http.ResponseWriter, r *http.Request) {
	id, err := cluster.ParseShard(r.PathValue("id"))
	if err != nil {
		m.fail(w, err)
		return
	}
	var req struct {
		Weight *int `json:"weight"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if req.Weight == nil {
		m.fail(w, errors.New(`set-weight needs {"weight": N}`))
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpSetWeight, ShardID: id, Value: *req.Weight}); err != nil {
		m.fail(w, err)
		return
	}
	mp := m.Map()
	m.log.Info("shard weight set", "shard", id, "weight", mp.ShardWeight(id))
	writeJSON(w, http.StatusOK, map[string]any{"shard": id, "weight": mp.ShardWeight(id), "targets": cluster.Targets(mp)})
}

func (m *Manager) handleAutoscale(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.autoscaleStatus())
}

func (m *Manager) handleFailover(w http.ResponseWriter, r *http.Request) {
	id, err := cluster.ParseShard(r.PathValue("id"))
	if err != nil {
		m.fail(w, err)
		return
	}
	timeout := 10 * time.Second
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > 5*time.Minute {
			m.fail(w, errors.New("bad timeout (a duration such as 10s, at most 5m)"))
			return
		}
		timeout = d
	}
	to, err := m.Failover(r.Context(), id, timeout)
	if err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"shard": id, "primary": to, "primary_addr": m.Map().Addr(to)})
}

func (m *Manager) handleRemoveNode(w http.ResponseWriter, r *http.Request) {
	id, err := resolveNode(m.Map(), r.PathValue("id"))
	if err != nil {
		m.fail(w, err)
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpRemoveNode, NodeID: id}); err != nil {
		m.fail(w, err)
		return
	}
	m.mu.Lock()
	delete(m.health, id)
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

func (m *Manager) handleConfigGet(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.Map().Settings)
}

func (m *Manager) handleConfigSet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key   string `json:"key"`
		Value int    `json:"value"`
	}
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if err := m.propose(cluster.Command{Op: cluster.OpSetConfig, Key: req.Key, Value: req.Value}); err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m.Map().Settings)
}

func (m *Manager) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := decode(r, &req); err != nil {
		m.fail(w, err)
		return
	}
	if err := m.addVoter(req); err != nil {
		m.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"joined": req.ID})
}
