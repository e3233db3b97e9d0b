// Package proxy is the stateless routing node (shoal proxy): it speaks
// RESP2, RESP3 (HELLO 3) and the memcached text and meta protocols to
// plain clients, routes every
// command by the slot of its keys to the owning shard's primary, splits
// multi-key commands per shard and merges the replies in the client's
// order, answers keyless admin commands itself, and retries across
// failovers within a time budget.
//
// Event loops (loop.go, --event-loops): plain RESP clients and their
// backend connections are served on gnet loops (single-shard keyed
// commands and multi-key splits); a client that needs anything else is
// handed over, for good, to the goroutines below.
//
// Goroutines: one map watcher (long-polls the managers, owns nothing but
// the published route table); the RESP accept loop; per client
// connection not on an event loop a reader (parses,
// routes, appends to backend buffers and flushes them once per read
// batch; owns the client's transaction, blocking and subscription
// state) and a writer (delivers replies in request order); per backend
// connection, pooled or dedicated (a transaction's, a blocked
// command's), a reader (pairs replies with requests in FIFO order); per
// subscribed client a pub/sub loop owning its subscription connections,
// and a reader per such connection (forwards messages). Retries run on
// short-lived goroutines; the admin endpoint (--admin-port) runs
// net/http's server. Close stops the tracked ones and ends the retries
// through its context.
//
// Hot keys (hotkeys.go) and metrics (metrics.go) add no goroutine: the
// sketch decays lazily when it is next touched.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/acl"
	"shoal/internal/admin"
	"shoal/internal/cluster"
	"shoal/internal/manager"
	"shoal/internal/tlsconf"
)

// Config configures a proxy.
type Config struct {
	Managers string // comma-separated manager HTTP addresses
	Bind     string // listen host; "" = 127.0.0.1
	Port     int    // RESP port; 0 = any free port
	MCPort   int    // memcached port; -1 = off, 0 = any free port
	// TLSPort serves RESP over TLS (with TLS) besides Port; -1 = off, 0 =
	// any free port. Its clients are served exactly as Port's.
	TLSPort     int
	TLS         *tls.Config
	RetryBudget time.Duration // how long a command is retried across failovers
	// PoolSize is the number of pipelined connections per backend node
	// of the goroutine path (clients not on an event loop).
	PoolSize int
	// LoopPoolSize is the number of pipelined connections per backend
	// node of each event loop. 1 (the default): a loop writes each node
	// once per iteration, whatever the number of its clients sending to
	// it (bench/proxy.sh: 8 % less CPU per request at pipeline 1 than 2,
	// the same throughput at pipeline 16), as twemproxy's default
	// server_connections: 1. More spread a loop's requests to one node
	// over its event loops (and lessen head-of-line blocking behind a
	// slow request).
	LoopPoolSize int
	// MaxPending bounds one client's outstanding requests: past it the
	// proxy stops reading from that client (backpressure).
	MaxPending int
	// ClientOutputLimit bounds the reply bytes the proxy holds for one
	// client (answered, not yet written to it); past it the client is
	// disconnected. 0: no limit.
	ClientOutputLimit int64
	// ClientQueryLimit bounds the unparsed input held for one client of
	// the event loops while it waits (at MaxPending, or behind a slow
	// backend): the loop keeps reading the socket, and past this many
	// bytes the client is disconnected (Redis's
	// client-query-buffer-limit). The goroutine path stops reading
	// instead.
	ClientQueryLimit int64
	// ReadFrom is "primary" (every command to the primary) or
	// "replica-preferred" (read-only commands to a replica of the shard,
	// with READONLY, falling back to the primary on any retry).
	ReadFrom string
	// HotKeySample counts one keyed command in HotKeySample (a power of
	// two; 1 = every command) in the hot-key sketch.
	HotKeySample int
	// HotKeyHalfLife is how fast hot-key scores decay: every half-life
	// they are halved.
	HotKeyHalfLife time.Duration
	// HotKeyCache is the number of hottest keys whose GET and memcached
	// get replies are cached for HotKeyCacheTTL (0: no cache).
	HotKeyCache    int
	HotKeyCacheTTL time.Duration
	// AdminAddr is host:port of the admin HTTP endpoint (/metrics,
	// /healthz, /readyz); "" = off, port 0 = any free port.
	AdminAddr string
	// Client authentication (docs/proxy.md, "Authentication"):
	// RequirePass is the default user's password; Users are ACL users
	// written as the storage node's user directive ("alice on >pw ~* +@all").
	// The proxy answers AUTH and HELLO AUTH itself and applies each
	// user's command, key and channel rules before routing.
	RequirePass string
	Users       []string
	// Backend are the credentials the proxy sends (AUTH) on every
	// connection it opens to a storage node, when the nodes require a
	// password: every client's commands reach the nodes as this user.
	Backend acl.Credentials
	// BackendTLS, if set, makes every backend RESP connection TLS to the
	// node's tls-port (Node.TLSAddr in the map), trusting its RootCAs and
	// presenting its certificate if any.
	BackendTLS *tls.Config
	Log        *slog.Logger
	// ManagerToken is the bearer token for the managers' API (their
	// --cluster-token or --admin-token); "" sends none.
	ManagerToken string
	// ManagerCAFile, if set, calls the managers over HTTPS trusting this
	// CA (managers started with --tls-cert-file).
	ManagerCAFile string
	// ManagerHTTP, if set, is the HTTP client for the managers (tests).
	ManagerHTTP *http.Client
	// EventLoops is the number of event loops serving plain RESP clients
	// and their backend connections (loop.go); 0: a reader goroutine per
	// client. Off anyway with BackendTLS or the hot-key cache.
	EventLoops int
}

// DefaultConfig returns the defaults of shoal proxy.
func DefaultConfig() Config {
	return Config{Bind: "127.0.0.1", MCPort: -1, TLSPort: -1, RetryBudget: 5 * time.Second, PoolSize: 2, LoopPoolSize: 1, MaxPending: 1024, ClientOutputLimit: 64 << 20, ClientQueryLimit: 64 << 20, ReadFrom: "primary",
		HotKeySample: 8, HotKeyHalfLife: time.Second, EventLoops: 1}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Managers == "":
		return errors.New("proxy: --manager is required")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("proxy: bad port %d", c.Port)
	case c.MCPort < -1 || c.MCPort > 65535:
		return fmt.Errorf("proxy: bad memcached port %d", c.MCPort)
	case c.TLSPort < -1 || c.TLSPort > 65535:
		return fmt.Errorf("proxy: bad TLS port %d", c.TLSPort)
	case c.TLSPort >= 0 && c.TLS == nil:
		return errors.New("proxy: --tls-port needs --tls-cert-file and --tls-key-file")
	case c.RetryBudget < 0:
		return errors.New("proxy: retry budget must not be negative")
	case c.PoolSize < 1 || c.PoolSize > 64:
		return errors.New("proxy: pool size must be between 1 and 64")
	case c.LoopPoolSize < 1 || c.LoopPoolSize > 64:
		return errors.New("proxy: loop pool size must be between 1 and 64")
	case c.MaxPending < 1:
		return errors.New("proxy: max pending must be at least 1")
	case c.ClientOutputLimit < 0:
		return errors.New("proxy: client output limit must not be negative")
	case c.ClientOutputLimit > 0 && c.ClientOutputLimit < 64<<10:
		return errors.New("proxy: client output limit must be 0 (off) or at least 64kb")
	case c.ClientQueryLimit < 1<<20:
		return errors.New("proxy: client query buffer limit must be at least 1mb")
	case c.EventLoops < 0 || c.EventLoops > 64:
		return errors.New("proxy: event loops must be between 0 (off) and 64")
	case c.ReadFrom != "" && c.ReadFrom != "primary" && c.ReadFrom != "replica-preferred":
		return fmt.Errorf("proxy: --read-from must be primary or replica-preferred, not %q", c.ReadFrom)
	case c.HotKeySample < 1 || c.HotKeySample > 1<<16 || c.HotKeySample&(c.HotKeySample-1) != 0:
		return errors.New("proxy: --hot-key-sample must be a power of two between 1 and 65536")
	case c.HotKeyHalfLife < time.Millisecond:
		return errors.New("proxy: the hot-key half-life must be at least 1ms")
	case c.HotKeyCache < 0 || c.HotKeyCache > MaxHotKeyCache:
		return fmt.Errorf("proxy: --hot-key-cache N must be between 0 (off) and %d", MaxHotKeyCache)
	case c.HotKeyCache > 0 && (c.HotKeyCacheTTL <= 0 || c.HotKeyCacheTTL > time.Minute):
		return errors.New("proxy: the hot-key cache TTL must be positive and at most 1m")
	}
	return nil
}

// MaxHotKeyCache bounds --hot-key-cache's N.
const MaxHotKeyCache = 1024

// route is the published, immutable routing view of one cluster map.
type route struct {
	epoch  uint64
	slots  [cluster.NumSlots]uint16 // slot → shard id
	shards []int                    // sorted shard ids
	prim   map[int]*cluster.Node    // shard id → primary node
	repl   map[int][]*cluster.Node  // shard id → replicas (with an address)
	tlsOf  map[string]string        // node RESP address → its TLS address (BackendTLS)
}

func newRoute(m *cluster.Map) *route {
	r := &route{epoch: m.Epoch, slots: m.Slots, prim: map[int]*cluster.Node{}, repl: map[int][]*cluster.Node{}, tlsOf: map[string]string{}}
	for _, n := range m.Nodes {
		if n.TLSAddr != "" {
			r.tlsOf[n.Addr] = n.TLSAddr
		}
	}
	for id, s := range m.Shards {
		if n := m.Nodes[s.Primary]; n != nil {
			r.prim[id] = n
			r.shards = append(r.shards, id)
		}
		for _, rid := range s.Replicas {
			if n := m.Nodes[rid]; n != nil && n.Addr != "" && n.State == cluster.NodeActive {
				r.repl[id] = append(r.repl[id], n)
			}
		}
	}
	sort.Ints(r.shards)
	return r
}

// addr returns the RESP (or memcached) address of shard's primary.
func (r *route) addr(shard int, mc bool) string {
	n := r.prim[shard]
	if n == nil {
		return ""
	}
	if mc {
		return n.MCAddr
	}
	return n.Addr
}

// replicaAddr returns the address of one of shard's replicas (pick
// spreads clients over them), "" when it has none.
func (r *route) replicaAddr(shard int, mc bool, pick int) string {
	rs := r.repl[shard]
	if len(rs) == 0 {
		return ""
	}
	n := rs[pick%len(rs)]
	if mc {
		return n.MCAddr
	}
	return n.Addr
}

// Proxy is one proxy instance.
type Proxy struct {
	cfg Config
	log *slog.Logger
	mc  *manager.Client

	table   atomic.Pointer[route]
	changed atomic.Pointer[chan struct{}] // closed and replaced on every new table
	kick    chan struct{}                 // asks the watcher for an immediate refresh
	// windowOnly: the managers do not serve the routes view (fetchMap).
	windowOnly atomic.Bool

	ln, mcln, tlsln net.Listener

	mu struct {
		sync.Mutex
		backends map[string]*backend
		clients  map[net.Conn]struct{}
		conns    map[*conn]struct{}  // for INFO's output accounting
		lconns   map[*lconn]struct{} // the event loops' clients (INFO)
		closed   bool
	}
	nextID      atomic.Int64
	replicaRead bool // cfg.ReadFrom == "replica-preferred"
	stats       struct {
		conns, cmds, retries, backendErrs atomic.Int64
		outputLimitDrops                  atomic.Int64
		queryLimitDisconnects             atomic.Int64
		loopHandovers                     atomic.Int64 // event-loop clients moved to the goroutine path
		mapRefreshes                      atomic.Int64 // maps fetched on a refresh (not the long poll)
	}
	started time.Time
	t0      time.Time // monotonic base of request timestamps
	hot     *hotTracker
	met     *metrics
	acl     *acl.Registry // the clients' users (static: from Config)
	admin   *admin.Server
	front   *loopFront // the event loops (nil: off)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks cfg and builds a proxy; it starts nothing.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Log, mc: manager.NewClient(cfg.Managers), kick: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "proxy")
	if cfg.ManagerHTTP != nil {
		p.mc.HTTP = cfg.ManagerHTTP
	}
	p.mc.Token = cfg.ManagerToken
	if cfg.ManagerCAFile != "" {
		tc, err := tlsconf.Client(cfg.ManagerCAFile, "", "")
		if err != nil {
			return nil, fmt.Errorf("proxy: --manager-tls-ca-cert-file: %w", err)
		}
		p.mc.TLS = tc
	}
	p.acl = acl.NewRegistry()
	for _, line := range cfg.Users {
		name, rules, err := acl.ParseUserLine(line)
		if err == nil {
			err = p.acl.SetUser(name, rules)
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: --user %q: %w", line, err)
		}
	}
	if cfg.RequirePass != "" {
		p.acl.SetDefaultPassword(cfg.RequirePass)
	}
	p.mu.backends = map[string]*backend{}
	p.mu.clients = map[net.Conn]struct{}{}
	p.mu.conns = map[*conn]struct{}{}
	p.mu.lconns = map[*lconn]struct{}{}
	p.replicaRead = cfg.ReadFrom == "replica-preferred"
	p.hot = newHotTracker(cfg.HotKeySample, cfg.HotKeyHalfLife, cfg.HotKeyCache, cfg.HotKeyCacheTTL)
	p.t0 = time.Now()
	p.met = newMetrics(p)
	ch := make(chan struct{})
	p.changed.Store(&ch)
	return p, nil
}

// Start fetches the cluster map (waiting up to ctx for the managers),
// listens, and starts serving.
func (p *Proxy) Start(ctx context.Context) error {
	m, err := p.fetchMap(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("proxy: fetch the cluster map: %w", err)
	}
	p.publish(m)
	bind := p.cfg.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	p.ln, err = net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(p.cfg.Port)))
	if err != nil {
		return fmt.Errorf("proxy: listen: %w", err)
	}
	if p.cfg.MCPort >= 0 {
		p.mcln, err = net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(p.cfg.MCPort)))
		if err != nil {
			p.closeListeners()
			return fmt.Errorf("proxy: listen (memcached): %w", err)
		}
	}
	if p.cfg.TLSPort >= 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(p.cfg.TLSPort)))
		if err != nil {
			p.closeListeners()
			return fmt.Errorf("proxy: listen (TLS): %w", err)
		}
		p.tlsln = tls.NewListener(l, p.cfg.TLS)
	}
	if p.cfg.AdminAddr != "" {
		p.admin = admin.New(admin.Config{Addr: p.cfg.AdminAddr, Gatherer: p.met.reg, Ready: p.ready, Log: p.log})
		if err := p.admin.Start(); err != nil {
			p.closeListeners()
			return fmt.Errorf("proxy: %w", err)
		}
	}
	if p.cfg.EventLoops > 0 && p.cfg.BackendTLS == nil && p.hot.cache == nil {
		if err := p.startLoops(); err != nil {
			p.closeListeners()
			if p.admin != nil {
				p.admin.Close()
			}
			return err
		}
	}
	p.started = time.Now()
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.watch()
	p.wg.Add(1)
	if p.front != nil {
		go p.acceptLoop(p.ln)
	} else {
		go p.accept(p.ln, p.serveRESP)
	}
	if p.mcln != nil {
		p.wg.Add(1)
		go p.accept(p.mcln, p.serveMemcache)
	}
	if p.tlsln != nil {
		// The handshake runs on the connection's goroutine (at its first
		// read), not in the accept loop.
		p.wg.Add(1)
		go p.accept(p.tlsln, p.serveRESP)
	}
	return nil
}

// Addr is the RESP listen address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// MCAddr is the memcached listen address ("" when off).
func (p *Proxy) MCAddr() string {
	if p.mcln == nil {
		return ""
	}
	return p.mcln.Addr().String()
}

// TLSAddr is the TLS RESP listen address ("" when off).
func (p *Proxy) TLSAddr() string {
	if p.tlsln == nil {
		return ""
	}
	return p.tlsln.Addr().String()
}

// AdminAddr is the admin endpoint's address ("" when off).
func (p *Proxy) AdminAddr() string {
	if p.admin == nil {
		return ""
	}
	return p.admin.Addr()
}

// Close stops the admin endpoint and listening, closes every client and
// backend connection and waits for all goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.closed = true
	for c := range p.mu.clients {
		c.Close()
	}
	backends := p.mu.backends
	p.mu.Unlock()
	if p.admin != nil {
		p.admin.Close()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.closeListeners()
	if p.front != nil {
		p.front.stop()
	}
	for _, b := range backends {
		b.close()
	}
	p.wg.Wait()
	return nil
}

// closeListeners closes the client ports that are open (RESP,
// memcached, TLS).
func (p *Proxy) closeListeners() {
	for _, ln := range []net.Listener{p.ln, p.mcln, p.tlsln} {
		if ln != nil {
			ln.Close()
		}
	}
}

// nextConn accepts ln's next connection; false once ln is closed.
func nextConn(ln net.Listener) (net.Conn, bool) {
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, true
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, false
		}
	}
}

func (p *Proxy) accept(ln net.Listener, serve func(net.Conn)) {
	defer p.wg.Done()
	for {
		c, ok := nextConn(ln)
		if !ok {
			return
		}
		if !p.trackClient(c) {
			return
		}
		p.wg.Add(1) // accept's own count keeps Close's Wait from passing meanwhile
		p.stats.conns.Add(1)
		go func() {
			defer p.wg.Done()
			serve(c)
			p.untrackClient(c)
		}()
	}
}

// trackClient registers a client connection served by a goroutine (Close
// closes it); false: the proxy is closing, c is closed.
func (p *Proxy) trackClient(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		c.Close()
		return false
	}
	p.mu.clients[c] = struct{}{}
	return true
}

// untrackClient closes a client trackClient registered and forgets it.
func (p *Proxy) untrackClient(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.mu.clients, c)
	p.mu.Unlock()
}

// acceptLoop enrolls the RESP port's clients in the event loops.
func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, ok := nextConn(ln)
		if !ok {
			return
		}
		p.mu.Lock()
		closed := p.mu.closed
		p.mu.Unlock()
		if closed {
			c.Close()
			return
		}
		p.stats.conns.Add(1)
		p.front.enroll(c)
	}
}

func (p *Proxy) publish(m *cluster.Map) {
	if cur := p.table.Load(); cur != nil && cur.epoch >= m.Epoch {
		return
	}
	rt := newRoute(m)
	p.met.initBackends(rt)
	p.table.Store(rt)
	ch := make(chan struct{})
	old := p.changed.Swap(&ch)
	close(*old)
	p.dropStale(rt)
}

// dropStale fails the connections to nodes that are no longer a
// primary: a demoted or shutting-down primary may hold requests it will
// never answer (a write waiting for replica acks while it drains), and
// those requests are retried on the new primary when that is safe.
func (p *Proxy) dropStale(rt *route) {
	live := map[string]bool{}
	for _, n := range rt.prim {
		live[backendKey(n.Addr, false, false, false)] = true
		live[backendKey(n.Addr, false, false, true)] = true
		live[backendKey(n.MCAddr, true, false, false)] = true
	}
	for _, rs := range rt.repl {
		for _, n := range rs {
			live[backendKey(n.Addr, false, true, false)] = true
			live[backendKey(n.Addr, false, true, true)] = true
			live[backendKey(n.MCAddr, true, true, false)] = true
		}
	}
	p.mu.Lock()
	var stale []*backend
	for key, b := range p.mu.backends {
		if !live[key] {
			stale = append(stale, b)
		}
	}
	p.mu.Unlock()
	for _, b := range stale {
		b.reset(errors.New("the node is no longer a primary"), true)
	}
	if p.front != nil {
		p.front.dropStale(live)
	}
}

// fetchMap gets the map's routes view (manager.Client.RoutesMap), or
// the window view from a manager that does not serve it yet (one of an
// older version, during a rolling upgrade): a proxy routes by owner and
// needs none of the moves, whose JSON (~85 KB for a window of 1024)
// took 0.4 ms of its one thread to decode at every epoch of a move.
func (p *Proxy) fetchMap(ctx context.Context, after uint64, wait time.Duration) (*cluster.Map, error) {
	if !p.windowOnly.Load() {
		m, err := p.mc.RoutesMap(ctx, after, wait)
		var ae *manager.APIError
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.HasPrefix(ae.Msg, "view must be") {
			return m, err
		}
		p.windowOnly.Store(true)
	}
	return p.mc.WindowMap(ctx, after, wait)
}

// refresh asks the watcher for a new map now (coalesced).
func (p *Proxy) refresh() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// watch keeps the route table fresh: a long poll on the managers, cut
// short by refresh requests (a redirect or a backend failure seen by a
// client request).
func (p *Proxy) watch() {
	defer p.wg.Done()
	for p.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(p.ctx)
		done := make(chan struct{})
		go func() {
			select {
			case <-p.kick:
				cancel()
			case <-done:
			}
		}()
		m, err := p.fetchMap(ctx, p.table.Load().epoch, 30*time.Second)
		close(done)
		kicked := ctx.Err() != nil && p.ctx.Err() == nil
		cancel()
		if kicked {
			p.stats.mapRefreshes.Add(1)
			// The routes view, as the long poll: the full map also holds
			// every move queued (1.2 MB of JSON during a whole-keyspace
			// move), and decoding it after each burst of redirects held
			// the proxy's one thread from its event loop for tens of ms
			// at every cutover.
			m, err = p.fetchMap(p.ctx, 0, 0)
		}
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.log.Warn("cannot fetch the cluster map", "err", err)
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		p.publish(m)
	}
}
