package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shoal/internal/acl"
	"shoal/internal/admin"
	"shoal/internal/cluster"
	"shoal/internal/manager"
	"shoal/internal/migrator"
	"shoal/internal/tlsconf"
)

// runManager is `shoal manager`.
func runManager(args []string) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	id := fs.String("id", "m1", "this manager's id (unique among the managers)")
	raftAddr := fs.String("raft-addr", "127.0.0.1:7001", "host:port for Raft traffic between managers")
	httpAddr := fs.String("http-addr", "127.0.0.1:7000", "host:port of the HTTP API (heartbeats, shoal ctl)")
	dir := fs.String("dir", "", "data directory (default ./manager-<id>)")
	bootstrap := fs.Bool("bootstrap", false, "start a new cluster with this manager as its first voter")
	join := fs.String("join", "", "comma-separated HTTP addresses of running managers to join")
	bootstrapID := fs.String("bootstrap-id", "", "bootstrap if --id is this id, else --join (one argument list for every manager, as in a Kubernetes StatefulSet)")
	raftAdvertise := fs.String("raft-advertise", "", "host:port the other managers reach --raft-addr by (may be a DNS name; default --raft-addr)")
	httpAdvertise := fs.String("http-advertise", "", "host:port the map gives for this manager's HTTP API (may be a DNS name; default --http-addr)")
	logLevel := fs.String("loglevel", "info", "debug, info, warning")
	builtin := fs.Bool("migrator", true, "run the built-in migrator on the leader (false: standalone `shoal migrator` processes drive the slot moves)")
	lease := fs.Duration("migrator-lease", migrator.DefaultLease, "the built-in migrator's lease on the moves (how long a standby waits after it stops)")
	as := manager.DefaultAutoscaleOptions()
	autoscaleFlags(fs, &as)
	adminToken := fs.String("admin-token", "", "require \"Authorization: Bearer TOKEN\" on the HTTP API (every manager of the cluster the same); also $SHOAL_ADMIN_TOKEN")
	adminTokenFile := fs.String("admin-token-file", "", "read --admin-token from this file (first line)")
	clusterToken := fs.String("cluster-token", "", "a second token accepted only on the map and heartbeat endpoints (for nodes and proxies); needs --admin-token; also $SHOAL_CLUSTER_TOKEN")
	clusterTokenFile := fs.String("cluster-token-file", "", "read --cluster-token from this file (first line)")
	tlsCert := fs.String("tls-cert-file", "", "serve the HTTP API over HTTPS with this certificate (with --tls-key-file)")
	tlsKey := fs.String("tls-key-file", "", "the HTTPS certificate's key")
	tlsCA := fs.String("tls-ca-cert-file", "", "CA that signed the other managers' certificates (joining, forwarding to the leader); default: the system's roots")
	raftCert := fs.String("raft-tls-cert-file", "", "run Raft between the managers over mutual TLS: this manager's certificate (with --raft-tls-key-file, --raft-tls-ca-cert-file)")
	raftKey := fs.String("raft-tls-key-file", "", "key of --raft-tls-cert-file")
	raftCA := fs.String("raft-tls-ca-cert-file", "", "CA that signed every manager's Raft certificate (peers must present one)")
	nodeAccess := nodeAccessFlags(fs, "manager")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nodeAuth, nodeTLS, err := nodeAccess()
	if err != nil {
		return err
	}
	admin, err := tokenFrom(*adminToken, *adminTokenFile, "SHOAL_ADMIN_TOKEN")
	if err != nil {
		return err
	}
	clusterTok, err := tokenFrom(*clusterToken, *clusterTokenFile, "SHOAL_CLUSTER_TOKEN")
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = "manager-" + *id
	}
	if *bootstrapID != "" {
		if *bootstrap {
			return errors.New("--bootstrap-id and --bootstrap exclude each other")
		}
		if *id == *bootstrapID {
			*bootstrap, *join = true, ""
		} else if *join == "" {
			return errors.New("--bootstrap-id needs --join for the other managers")
		}
	}
	var serverTLS, peerTLS, raftTLS, raftPeerTLS *tls.Config
	if *raftCert != "" || *raftKey != "" || *raftCA != "" {
		if *raftCert == "" || *raftKey == "" || *raftCA == "" {
			return errors.New("Raft TLS needs --raft-tls-cert-file, --raft-tls-key-file and --raft-tls-ca-cert-file")
		}
		if raftTLS, err = tlsconf.Server(*raftCert, *raftKey, *raftCA, "yes"); err != nil {
			return fmt.Errorf("raft TLS: %w", err)
		}
		if raftPeerTLS, err = tlsconf.Client(*raftCA, *raftCert, *raftKey); err != nil {
			return fmt.Errorf("raft TLS: %w", err)
		}
	}
	if *tlsCert != "" || *tlsKey != "" {
		if serverTLS, err = tlsconf.Server(*tlsCert, *tlsKey, "", "no"); err != nil {
			return err
		}
		if *tlsCA != "" {
			if peerTLS, err = tlsconf.Client(*tlsCA, "", ""); err != nil {
				return err
			}
		}
	}
	if err := as.Validate(); err != nil {
		return err
	}
	cfg := manager.Config{ID: *id, RaftAddr: *raftAddr, HTTPAddr: *httpAddr, Dir: *dir, Bootstrap: *bootstrap,
		Logger: newLogger(os.Stderr, *logLevel), Autoscale: as, NodeAuth: nodeAuth, AdminToken: admin, ClusterToken: clusterTok,
		TLS: serverTLS, PeerTLS: peerTLS, NodeTLS: nodeTLS, RaftTLS: raftTLS, RaftPeerTLS: raftPeerTLS,
		RaftAdvertise: *raftAdvertise, HTTPAdvertise: *httpAdvertise,
		DisableMigrator: !*builtin, MigratorLease: *lease}
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	if !*bootstrap && *join == "" {
		if _, err := os.Stat(filepath.Join(*dir, "raft.db")); err != nil {
			return errors.New("a new manager needs --bootstrap (first manager) or --join ADDR (the others)")
		}
	}
	m, err := manager.New(cfg)
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return m.Close()
}

// runMigrator is `shoal migrator`: a standalone migrator that drives the
// slot moves through the managers' HTTP API while it holds the migrator
// lease, and stands by while another migrator holds it.
func runMigrator(args []string) error {
	fs := flag.NewFlagSet("migrator", flag.ContinueOnError)
	managers := fs.String("manager", "", "comma-separated HTTP addresses of the managers (required)")
	host, _ := os.Hostname()
	id := fs.String("id", fmt.Sprintf("migrator-%s-%d", host, os.Getpid()), "this migrator's id, the lease holder name (unique among the migrators)")
	lease := fs.Duration("lease", migrator.DefaultLease, "lease on the moves: after a crash, a standby takes them on this long after the last renewal")
	logLevel := fs.String("loglevel", "info", "debug, info, warning")
	adminPort := fs.Int("admin-port", 0, "admin HTTP port on 127.0.0.1: /metrics, /healthz, /readyz (0: off)")
	adminAddr := fs.String("admin-addr", "", "admin HTTP host:port (instead of --admin-port, to listen on another address)")
	token := fs.String("token", "", "the managers' --admin-token (also $SHOAL_TOKEN)")
	tokenFile := fs.String("token-file", "", "read --token from this file (first line)")
	cacert := fs.String("cacert", os.Getenv("SHOAL_CACERT"), "call the managers over HTTPS, trusting this CA (also $SHOAL_CACERT)")
	nodeAccess := nodeAccessFlags(fs, "migrator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *managers == "" || fs.NArg() > 0 {
		return errors.New("usage: shoal migrator --manager ADDR[,ADDR...] [--id ID] [--lease 5s] [--loglevel info] [--admin-port P | --admin-addr H:P] [--token T | --token-file F] [--cacert F] [--node-user U] [--node-pass P] [--node-tls-ca-cert-file F ...]")
	}
	nodeAuth, nodeTLS, err := nodeAccess()
	if err != nil {
		return err
	}
	tok, err := tokenFrom(*token, *tokenFile, "SHOAL_TOKEN")
	if err != nil {
		return err
	}
	mc := manager.NewClient(*managers)
	mc.Token = tok
	if *cacert != "" {
		if mc.TLS, err = tlsconf.Client(*cacert, "", ""); err != nil {
			return fmt.Errorf("--cacert: %w", err)
		}
	}
	if *adminAddr == "" && *adminPort > 0 {
		*adminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*adminPort))
	}
	if *id == cluster.ManagerMigrator {
		return fmt.Errorf("migrator id %q is the managers' own: choose another", *id)
	}
	log := newLogger(os.Stderr, *logLevel)
	g, err := migrator.New(migrator.Config{ID: *id, Lease: *lease, Logger: log, NodeAuth: nodeAuth, NodeTLS: nodeTLS}, &manager.RemoteMigrator{C: mc})
	if err != nil {
		return err
	}
	if *adminAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(g.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		adm := admin.New(admin.Config{Addr: *adminAddr, Gatherer: reg, Ready: g.Ready, Log: log})
		if err := adm.Start(); err != nil {
			return fmt.Errorf("admin endpoint: %w", err)
		}
		defer adm.Close()
		log.Info("migrator admin endpoint", "addr", adm.Addr())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("migrator started", "id", *id, "managers", *managers, "lease", *lease)
	g.Run(ctx) // releases the lease on the way out
	return nil
}

// nodeAccessFlags registers the flags by which a manager or a migrator
// (who) reaches the storage nodes when it probes slot moves: credentials
// (--node-user, --node-pass or $SHOAL_NODE_PASS) and TLS to their
// tls-port (--node-tls-*). The function it returns reads them after Parse.
func nodeAccessFlags(fs *flag.FlagSet, who string) func() (acl.Credentials, *tls.Config, error) {
	var auth acl.Credentials
	fs.StringVar(&auth.User, "node-user", "", "user the "+who+" logs in as on storage nodes that require a password (with --node-pass)")
	fs.StringVar(&auth.Pass, "node-pass", "", "password the "+who+" sends to the storage nodes (their requirepass, or --node-user's); also $SHOAL_NODE_PASS")
	ca := fs.String("node-tls-ca-cert-file", "", "probe the storage nodes on their tls-port, trusting this CA")
	cert := fs.String("node-tls-cert-file", "", "client certificate presented to the nodes (with --node-tls-key-file)")
	key := fs.String("node-tls-key-file", "", "key of --node-tls-cert-file")
	return func() (acl.Credentials, *tls.Config, error) {
		if auth.Pass == "" {
			auth.Pass = os.Getenv("SHOAL_NODE_PASS")
		}
		if *ca == "" {
			return auth, nil, nil
		}
		tc, err := tlsconf.Client(*ca, *cert, *key)
		if err != nil {
			return auth, nil, fmt.Errorf("node TLS: %w", err)
		}
		return auth, tc, nil
	}
}

// tokenFrom is a token given as a flag, else read from a file (its first
// line: keeps it out of ps and shell history), else from an environment
// variable; "" when none is set.
func tokenFrom(flagVal, file, env string) (string, error) {
	switch {
	case flagVal != "" && file != "":
		return "", errors.New("give a token or a token file, not both")
	case flagVal != "":
		return flagVal, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if line = strings.TrimSpace(line); line == "" {
			return "", fmt.Errorf("token file %q is empty", file)
		}
		return line, nil
	}
	return os.Getenv(env), nil
}

// autoscaleFlags registers the autoscaling flags of shoal manager (and
// shoal dev, which passes them on) on fs, writing into o.
func autoscaleFlags(fs *flag.FlagSet, o *manager.AutoscaleOptions) {
	p := &o.Pilot
	fs.BoolVar(&o.Enabled, "autoscale", o.Enabled, "run the autoscaler on the leader: load rebalancing, scale-out from the standby pool, scale-in")
	fs.BoolVar(&p.ScaleOut, "autoscale-scale-out", p.ScaleOut, "with --autoscale: add shards from the standby pool")
	fs.BoolVar(&p.ScaleIn, "autoscale-scale-in", p.ScaleIn, "with --autoscale: drain shards (their nodes go back to the pool)")
	fs.BoolVar(&p.Balance, "autoscale-rebalance", p.Balance, "with --autoscale: move hot slots off shards past --rebalance-threshold")
	fs.Float64Var(&p.Scale.ScaleOutMemFrac, "scale-out-memory", p.Scale.ScaleOutMemFrac, "scale out above this fraction of the cluster's maxmemory in use")
	fs.Float64Var(&p.Scale.ScaleOutOpsPerShard, "scale-out-ops", p.Scale.ScaleOutOpsPerShard, "scale out above this mean ops/s per shard")
	fs.Float64Var(&p.Scale.ScaleInMemFrac, "scale-in-memory", p.Scale.ScaleInMemFrac, "scale in below this memory fraction (and below --scale-in-ops)")
	fs.Float64Var(&p.Scale.ScaleInOpsPerShard, "scale-in-ops", p.Scale.ScaleInOpsPerShard, "scale in below this mean ops/s per shard (and below --scale-in-memory)")
	fs.DurationVar(&p.Scale.Sustain, "autoscale-sustain", p.Scale.Sustain, "a scale threshold must be passed this long before acting")
	fs.DurationVar(&p.Scale.Cooldown, "autoscale-cooldown", p.Scale.Cooldown, "no action for this long after the last one ended")
	fs.IntVar(&p.Scale.MinShards, "min-shards", p.Scale.MinShards, "never scale in below this many shards")
	fs.IntVar(&p.Scale.MaxShards, "max-shards", p.Scale.MaxShards, "never scale out above this many shards")
	fs.Float64Var(&p.Rebalance.Threshold, "rebalance-threshold", p.Rebalance.Threshold, "move hot slots when a shard's load per capacity passes (1 + this) x the mean")
	fs.DurationVar(&p.BalanceSustain, "rebalance-sustain", p.BalanceSustain, "an imbalance must last this long before slots move")
	fs.IntVar(&p.Rebalance.MaxMoves, "rebalance-max-moves", p.Rebalance.MaxMoves, "slot moves per load rebalancing step")
	fs.IntVar(&o.MoveBatch, "autoscale-move-batch", o.MoveBatch, "slot moves a scale-out or scale-in queues at once (the next batch when they are done)")
	fs.DurationVar(&o.Interval, "autoscale-interval", o.Interval, "how often the autoscaler decides")
	fs.DurationVar(&o.Smoothing, "load-smoothing", o.Smoothing, "time constant of the load average (EWMA) the decisions use")
	fs.StringVar(&o.ProvisionerCommand, "provisioner-command", o.ProvisionerCommand, "run (sh -c) when a scale-out is due and the standby pool is short (docs/operations.md)")
	fs.DurationVar(&o.ProvisionerTimeout, "provisioner-timeout", o.ProvisionerTimeout, "kill the provisioner command after this long")
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l := slog.LevelInfo
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warning", "warn":
		l = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

const ctlUsage = `usage: shoal ctl [--manager ADDR[,ADDR...]] [--token T | --token-file F] [--cacert F] [--json] <command> [args]

The token (or $SHOAL_TOKEN) is sent as "Authorization: Bearer T" to managers
started with --admin-token. --cacert (or $SHOAL_CACERT) calls the managers
over HTTPS, trusting that CA (managers started with --tls-cert-file).

commands:
  status                 cluster health, shards, primaries/replicas, slots, epochs, lag
  nodes                  storage nodes with role, liveness, offset, memory, keys
  create SHARDS [--nodes N] [--if-new]
                         first shards from the registered idle nodes (slots by weight);
                         --nodes: wait (up to --timeout) until N nodes are registered;
                         --if-new: succeed without change when shards exist (scripts, compose)
  add-shard [NODE...] [--no-rebalance] [--no-wait]
                         a new shard of idle nodes (ids or RESP addresses; first = primary),
                         or with no NODE of 1 + replicas_per_shard live standby-pool nodes;
                         then moves its weighted share of slots onto it (only onto it)
  set-weight SHARD W     a shard's capacity share (0: its primary node's weight); then rebalance
  remove-node NODE       remove a node (a primary owning slots: fail over first)
  failover SHARD [--timeout 10s]
                         graceful failover: fence the primary, let a replica catch up, switch
  config get [KEY]       cluster settings (heartbeat_ms, lease_ms, margin_ms, sync_replicas,
                         replicas_per_shard)
  config set KEY VALUE
  map                    the raw cluster map (JSON)
  migrate SLOT|FIRST-LAST... --to SHARD [--timeout 10m] [--no-wait]
                         move slots to a shard online; waits, showing progress, and
                         exits non-zero if they have not all moved within --timeout
  migrations             the slot moves in progress (state, attempts, last error)
  migrations pause|resume|cancel SLOT|FIRST-LAST...|all
                         pause moves (the target stops importing and drops its partial
                         copy; a move in cutover unfences), resume them (a fresh copy), or
                         cancel them (the source keeps the slots); prints the moves left
  rebalance [--dry-run] [--max-moves N] [--no-wait]
                         plan slot moves by measured load (ops/s, memory per weight), or by
                         weight when the load is even; print the plan and why, then run it
  drain SHARD [--dry-run] [--no-wait]
                         move all of a shard's slots to the others (by weight); then its nodes
                         go back to the standby pool
  autoscale status       the autoscaler: metrics vs thresholds, sustain, cooldown, decisions
  hotkeys --proxy ADDR [-n N]
                         the N (default 10) hottest keys a proxy has seen, with their
                         decayed access counts (SHOAL HOTKEYS on the proxy's RESP port)

--manager defaults to $SHOAL_MANAGER or 127.0.0.1:7000.
`

// runCtl is `shoal ctl`.
func runCtl(args []string, out io.Writer) error {
	addr := os.Getenv("SHOAL_MANAGER")
	if addr == "" {
		addr = "127.0.0.1:7000"
	}
	asJSON := false
	timeout := 10 * time.Second
	timeoutSet := false
	var rest []string
	token, tokenFile := "", ""
	cacert := os.Getenv("SHOAL_CACERT")
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case a == "--cacert":
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", a)
			}
			cacert = args[i+1]
			i++
		case a == "--token" || a == "--token-file":
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", a)
			}
			if a == "--token" {
				token = args[i+1]
			} else {
				tokenFile = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--token="):
			token = strings.TrimPrefix(a, "--token=")
		case a == "--manager" || a == "-manager" || a == "--timeout":
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", a)
			}
			if a == "--timeout" {
				d, err := time.ParseDuration(args[i+1])
				if err != nil {
					return fmt.Errorf("bad --timeout: %w", err)
				}
				timeout, timeoutSet = d, true
			} else {
				addr = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--manager="):
			addr = strings.TrimPrefix(a, "--manager=")
		case a == "-h" || a == "--help":
			fmt.Fprint(out, ctlUsage)
			return nil
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return errors.New("missing command\n\n" + ctlUsage)
	}
	tok, err := tokenFrom(token, tokenFile, "SHOAL_TOKEN")
	if err != nil {
		return err
	}
	c := manager.NewClient(addr)
	c.Token = tok
	if cacert != "" {
		if c.TLS, err = tlsconf.Client(cacert, "", ""); err != nil {
			return err
		}
	}
	ctx := context.Background()
	emit := func(v any) error {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	// show prints the status a changing command returns.
	show := func(st *manager.Status, err error) error {
		if err != nil {
			return err
		}
		if asJSON {
			return emit(st)
		}
		printStatus(out, st)
		return nil
	}
	cmd, params := rest[0], rest[1:]
	need := func(n int, what string) error {
		if len(params) != n {
			return fmt.Errorf("usage: shoal ctl %s %s", cmd, what)
		}
		return nil
	}
	switch cmd {
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return emit(st)
		}
		printStatus(out, st)
		if !st.Healthy {
			return errors.New("cluster is not healthy")
		}
		return nil
	case "nodes":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return emit(st.Nodes)
		}
		printNodes(out, st.Nodes)
		return nil
	case "create":
		return ctlCreate(ctx, c, params, timeout, show)
	case "add-shard":
		var nodes []string
		move, wait := true, true
		for _, p := range params {
			switch p {
			case "--no-rebalance":
				move = false
			case "--no-wait":
				wait = false
			default:
				nodes = append(nodes, p)
			}
		}
		st, err := c.AddShardMoving(ctx, nodes, move) // no nodes: from the standby pool
		if err != nil || !move || !wait {
			return show(st, err)
		}
		ms, err := c.Migrations(ctx)
		if err != nil {
			return err
		}
		targets := map[int]int{}
		for _, mg := range ms {
			targets[mg.Slot] = mg.To
		}
		if !asJSON {
			fmt.Fprintf(out, "new shard: %d slot moves queued\n", len(targets))
		}
		if !timeoutSet {
			timeout = 30 * time.Minute
		}
		if err := waitMoves(ctx, c, targets, timeout, asJSON, out); err != nil {
			return err
		}
		st, err = c.Status(ctx)
		return show(st, err)
	case "remove-node":
		if err := need(1, "NODE"); err != nil {
			return err
		}
		if err := c.RemoveNode(ctx, params[0]); err != nil {
			return err
		}
		if asJSON {
			return emit(map[string]string{"removed": params[0]})
		}
		fmt.Fprintf(out, "removed %s\n", params[0])
		return nil
	case "failover":
		if err := need(1, "SHARD [--timeout 10s]"); err != nil {
			return err
		}
		id, err := cluster.ParseShard(params[0])
		if err != nil {
			return err
		}
		start := time.Now()
		p, err := c.Failover(ctx, id, timeout)
		if err != nil {
			return err
		}
		if asJSON {
			return emit(map[string]any{"shard": id, "primary": p, "ms": time.Since(start).Milliseconds()})
		}
		fmt.Fprintf(out, "shard %d: primary is now %s (%v)\n", id, p, time.Since(start).Round(time.Millisecond))
		return nil
	case "config":
		if len(params) == 0 {
			return errors.New("usage: shoal ctl config get [KEY] | set KEY VALUE")
		}
		switch params[0] {
		case "get":
			s, err := c.Config(ctx)
			if err != nil {
				return err
			}
			if len(params) == 2 {
				v, ok := s.Get(params[1])
				if !ok {
					return fmt.Errorf("unknown setting %q (one of %v)", params[1], cluster.SettingKeys())
				}
				if asJSON {
					return emit(map[string]int{params[1]: v})
				}
				fmt.Fprintln(out, v)
				return nil
			}
			if asJSON {
				return emit(s)
			}
			for _, k := range cluster.SettingKeys() {
				v, _ := s.Get(k)
				fmt.Fprintf(out, "%s %d\n", k, v)
			}
			return nil
		case "set":
			if len(params) != 3 {
				return errors.New("usage: shoal ctl config set KEY VALUE")
			}
			v, err := strconv.Atoi(params[2])
			if err != nil {
				return fmt.Errorf("bad value %q (an integer)", params[2])
			}
			s, err := c.SetConfig(ctx, params[1], v)
			if err != nil {
				return err
			}
			if asJSON {
				return emit(s)
			}
			fmt.Fprintln(out, "OK")
			return nil
		}
		return errors.New("usage: shoal ctl config get [KEY] | set KEY VALUE")
	case "map":
		m, err := c.Map(ctx, 0, 0)
		if err != nil {
			return err
		}
		return emit(m)
	case "migrate":
		if !timeoutSet {
			timeout = 10 * time.Minute
		}
		return ctlMigrate(ctx, c, params, timeout, asJSON, out)
	case "rebalance", "drain":
		if !timeoutSet {
			timeout = 30 * time.Minute
		}
		return ctlPlan(ctx, c, cmd, params, timeout, asJSON, out)
	case "hotkeys":
		return ctlHotkeys(params, timeout, asJSON, out)
	case "set-weight":
		if err := need(2, "SHARD WEIGHT"); err != nil {
			return err
		}
		id, err := cluster.ParseShard(params[0])
		if err != nil {
			return err
		}
		w, err := strconv.Atoi(params[1])
		if err != nil {
			return fmt.Errorf("bad weight %q", params[1])
		}
		if err := c.SetWeight(ctx, id, w); err != nil {
			return err
		}
		if asJSON {
			return emit(map[string]int{"shard": id, "weight": w})
		}
		fmt.Fprintf(out, "shard %d weight %d (shoal ctl rebalance moves slots toward the new targets)\n", id, w)
		return nil
	case "autoscale":
		if len(params) > 1 || len(params) == 1 && params[0] != "status" {
			return errors.New("usage: shoal ctl autoscale status")
		}
		as, err := c.Autoscale(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return emit(as)
		}
		printAutoscale(out, as)
		return nil
	case "migrations":
		var ms []*cluster.Migration
		var err error
		if len(params) > 0 {
			ms, err = ctlMigrationAction(ctx, c, params)
		} else {
			ms, err = c.Migrations(ctx)
		}
		if err != nil {
			return err
		}
		if asJSON {
			return emit(ms)
		}
		printMigrations(out, ms)
		if len(ms) > 0 {
			// Who drives them (the lease; expiry on the manager's clock).
			if mp, err := c.Map(ctx, 0, 0); err == nil {
				printLease(out, mp.MigratorLease, time.Now().UnixMilli())
			}
		}
		return nil
	}
	return fmt.Errorf("unknown ctl command %q\n\n%s", cmd, ctlUsage)
}

func printStatus(out io.Writer, st *manager.Status) {
	health := "ok"
	if !st.Healthy {
		health = "DEGRADED"
	}
	fmt.Fprintf(out, "cluster %s  map epoch %d  leader %s  managers %d  unassigned slots %d\n\n",
		health, st.Epoch, st.Leader, len(st.Managers), st.Unowned)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tEPOCH\tSLOTS\tWEIGHT\tPRIMARY\tREPLICAS (lag)\tSTATE")
	for _, s := range st.Shards {
		var reps []string
		for i, r := range s.Replicas {
			lag := s.Lag[s.ReplicaIDs[i]]
			l := strconv.FormatInt(lag, 10)
			if lag < 0 {
				l = "down"
			}
			reps = append(reps, r+" ("+l+")")
		}
		state := "ok"
		if !s.Healthy {
			state = s.State
		}
		if s.Draining {
			state += " (draining)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.ID, s.Epoch, s.Slots, s.Weight, s.Primary, strings.Join(reps, ", "), state)
	}
	tw.Flush()
	pool := "(empty)"
	if len(st.Standby) > 0 {
		pool = strings.Join(st.Standby, ", ")
	}
	fmt.Fprintf(out, "\nstandby pool: %d nodes %s\n", len(st.Standby), pool)
	a := st.Autoscale
	if !a.Enabled {
		fmt.Fprintln(out, "autoscale: off")
	} else {
		fmt.Fprintf(out, "autoscale: %s: %s\n", a.Kind, a.Reason)
		if a.InFlight != "" {
			fmt.Fprintf(out, "  in flight: %s\n", a.InFlight)
		}
	}
	for _, d := range a.Recent {
		if d.Action != "none" {
			fmt.Fprintf(out, "  %s\n", decisionLine(d))
		}
	}
	if len(st.Failovers) > 0 {
		fmt.Fprintln(out, "\nrecent failovers:")
		for _, f := range st.Failovers {
			fmt.Fprintf(out, "  %s  shard %d  %s -> %s  (%s)\n", f.Time.Format(time.TimeOnly), f.Shard, short(f.FromNode), short(f.ToNode), f.Reason)
		}
	}
}

func decisionLine(d manager.AutoscaleDecision) string {
	line := d.Time.Format(time.TimeOnly) + "  " + d.Action
	if d.Kind != "" && d.Action == "none" {
		line += " (" + d.Kind + ")"
	}
	if d.Shard != 0 {
		line += fmt.Sprintf("  shard %d", d.Shard)
	}
	if len(d.Nodes) > 0 {
		line += "  nodes " + strings.Join(d.Nodes, ",")
	}
	if d.Moves > 0 {
		line += fmt.Sprintf("  %d moves", d.Moves)
	}
	line += "  " + d.Reason
	if d.Error != "" {
		line += "  ERROR: " + d.Error
	}
	return line
}

// printAutoscale is shoal ctl autoscale status.
func printAutoscale(out io.Writer, a *manager.AutoscaleStatus) {
	c, s := a.Config, a.State
	on := map[bool]string{true: "on", false: "off"}
	fmt.Fprintf(out, "autoscale %s (scale-out %s, scale-in %s, rebalance %s)\n", on[a.Enabled], on[c.ScaleOut], on[c.ScaleIn], on[c.Rebalance])
	fmt.Fprintf(out, "now: %s: %s\n", a.Kind, a.Reason)
	if a.Busy != "" {
		fmt.Fprintf(out, "busy: %s\n", a.Busy)
	}
	if a.InFlight != "" {
		fmt.Fprintf(out, "in flight: %s\n", a.InFlight)
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	mem := "not reported (no maxmemory)"
	if s.MemFrac >= 0 {
		mem = fmt.Sprintf("%.1f%%", 100*s.MemFrac)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nMETRIC\tNOW\tSCALE OUT ABOVE\tSCALE IN BELOW")
	fmt.Fprintf(tw, "ops/s per shard (%d shards)\t%.0f\t%.0f\t%.0f\n", s.Shards, s.OpsPerShard, c.ScaleOutOpsPerShard, c.ScaleInOpsPerShard)
	fmt.Fprintf(tw, "memory used / maxmemory\t%s\t%.0f%%\t%.0f%%\n", mem, 100*c.ScaleOutMemFrac, 100*c.ScaleInMemFrac)
	imb := "not compared"
	if s.Imbalance > 0 {
		imb = fmt.Sprintf("%.2fx (shard %d, %s)", s.Imbalance, s.ImbalanceShard, s.ImbalanceDim)
	}
	fmt.Fprintf(tw, "hottest shard / mean load\t%s\t%.2fx (rebalance)\t\n", imb, 1+c.RebalanceThreshold)
	tw.Flush()
	fmt.Fprintf(out, "\nsustain: scale-out %s, scale-in %s of %s; rebalance %s of %s\n",
		s.ScaleOutFor.Round(time.Second), s.ScaleInFor.Round(time.Second), ms(c.SustainMs),
		s.BalanceFor.Round(time.Second), ms(c.RebalanceSustainMs))
	cool := "none"
	if s.CooldownLeft > 0 {
		cool = fmt.Sprintf("%s left of %s (after %s)", s.CooldownLeft.Round(time.Second), ms(c.CooldownMs), s.LastAction)
	}
	fmt.Fprintf(out, "cooldown: %s\n", cool)
	fmt.Fprintf(out, "shards: %d (min %d, max %d); a new shard takes %d pool nodes\n", s.Shards, c.MinShards, c.MaxShards, 1+c.ReplicasPerShard)
	pool := "(empty)"
	if len(a.Pool) > 0 {
		pool = strings.Join(a.Pool, ", ")
	}
	fmt.Fprintf(out, "standby pool (live): %d %s\n", len(a.Pool), pool)
	if p := a.Provisioner; p.Command != "" {
		fmt.Fprintf(out, "provisioner: %q running %v", p.Command, p.Running)
		if !p.LastRun.IsZero() {
			fmt.Fprintf(out, ", last run %s", p.LastRun.Format(time.TimeOnly))
		}
		if p.LastErr != "" {
			fmt.Fprintf(out, ", last error %s", p.LastErr)
		}
		fmt.Fprintln(out)
	} else {
		fmt.Fprintln(out, "provisioner: none (--provisioner-command)")
	}
	fmt.Fprintln(out, "\nrecent decisions:")
	if len(a.Decisions) == 0 {
		fmt.Fprintln(out, "  none yet")
	}
	for _, d := range a.Decisions {
		fmt.Fprintf(out, "  %s\n", decisionLine(d))
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// nodeVersion is a node's build and protocol version as `nodes` shows
// them: "0.2.0/p1"; "-/p0" for builds from before they were reported.
func nodeVersion(n cluster.Node) string {
	v := n.Version
	if v == "" {
		v = "-"
	}
	return fmt.Sprintf("%s/p%d", v, n.Protocol)
}

func printNodes(out io.Writer, nodes []manager.NodeStatus) {
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Shard < nodes[j].Shard })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tSHARD\tROLE\tALIVE\tSEEN(ms)\tOFFSET\tSYNCED\tOPS/S\tMEMORY\tKEYS\tVERSION")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\t%d\t%d\t%v\t%.0f\t%d\t%d\t%s\n", short(n.ID), n.Addr, n.Shard, n.Role, n.Alive,
			n.LastSeenMs, n.Offset, n.Synced, n.OpsPerSec, n.UsedMemory, n.Keys, nodeVersion(n.Node))
	}
	tw.Flush()
}

// ctlMigrate is `shoal ctl migrate SLOT|FIRST-LAST... --to SHARD`.
func ctlMigrate(ctx context.Context, c *manager.Client, params []string, timeout time.Duration, asJSON bool, out io.Writer) error {
	usage := errors.New("usage: shoal ctl migrate SLOT|FIRST-LAST... --to SHARD [--timeout 10m] [--no-wait]")
	to, wait := 0, true
	var slots []int
	for i := 0; i < len(params); i++ {
		p := params[i]
		switch {
		case p == "--to":
			if i+1 >= len(params) {
				return usage
			}
			id, err := cluster.ParseShard(params[i+1])
			if err != nil {
				return err
			}
			to = id
			i++
		case p == "--no-wait":
			wait = false
		default:
			var err error
			if slots, err = appendSlotArg(slots, p); err != nil {
				return err
			}
		}
	}
	if to == 0 || len(slots) == 0 {
		return usage
	}
	if _, err := c.Migrate(ctx, slots, to); err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(out, "queued %d slot moves to shard %d\n", len(slots), to)
		return nil
	}
	targets := map[int]int{}
	for _, s := range slots {
		targets[s] = to
	}
	return waitMoves(ctx, c, targets, timeout, asJSON, out)
}

// appendSlotArg appends the slots of SLOT or FIRST-LAST.
func appendSlotArg(slots []int, p string) ([]int, error) {
	first, last, found := strings.Cut(p, "-")
	a, err1 := strconv.Atoi(first)
	b := a
	var err2 error
	if found {
		b, err2 = strconv.Atoi(last)
	}
	if err1 != nil || err2 != nil || a < 0 || b < a || b >= cluster.NumSlots {
		return nil, fmt.Errorf("bad slot or range %q (slots are 0-%d)", p, cluster.NumSlots-1)
	}
	for s := a; s <= b; s++ {
		slots = append(slots, s)
	}
	return slots, nil
}

// ctlMigrationAction is `shoal ctl migrations pause|resume|cancel SLOT...|all`;
// it returns the moves left.
func ctlMigrationAction(ctx context.Context, c *manager.Client, params []string) ([]*cluster.Migration, error) {
	usage := errors.New("usage: shoal ctl migrations [pause|resume|cancel SLOT|FIRST-LAST...|all]")
	action := params[0]
	if action != "pause" && action != "resume" && action != "cancel" || len(params) < 2 {
		return nil, usage
	}
	all := false
	var slots []int
	for _, p := range params[1:] {
		if p == "all" {
			all = true
			continue
		}
		var err error
		if slots, err = appendSlotArg(slots, p); err != nil {
			return nil, err
		}
	}
	if all && len(slots) > 0 {
		return nil, usage
	}
	return c.MigrationAction(ctx, action, slots, all)
}

// waitMoves waits until every slot of targets is owned by its target
// shard, printing progress; an error when timeout passes first.
func waitMoves(ctx context.Context, c *manager.Client, targets map[int]int, timeout time.Duration, asJSON bool, out io.Writer) error {
	start := time.Now()
	deadline := start.Add(timeout)
	lastDone, lastPaused := -1, 0
	for {
		m, err := c.Map(ctx, 0, 0)
		if err != nil {
			return err
		}
		done, paused, lastErr := 0, 0, ""
		for s, to := range targets {
			if int(m.Slots[s]) == to && m.Migrations[s] == nil {
				done++
			} else if mg := m.Migrations[s]; mg != nil && mg.Paused {
				paused++
			} else if mg := m.Migrations[s]; mg != nil && mg.Error != "" {
				lastErr = fmt.Sprintf("slot %d attempt %d: %s", s, mg.Attempts, mg.Error)
			} else if mg == nil && int(m.Slots[s]) != to {
				return fmt.Errorf("slot %d is no longer moving and is on shard %d, not %d (cancelled?)", s, m.Slots[s], to)
			}
		}
		if (done != lastDone || paused != lastPaused) && !asJSON {
			note := ""
			if paused > 0 {
				note = fmt.Sprintf(", %d paused", paused)
			}
			fmt.Fprintf(out, "%s %d/%d slots moved (%s%s)\n", bar(done, len(targets), 30), done, len(targets),
				time.Since(start).Round(100*time.Millisecond), note)
			lastDone, lastPaused = done, paused
		}
		if done == len(targets) {
			if asJSON {
				enc := json.NewEncoder(out)
				return enc.Encode(map[string]any{"moved": done, "ms": time.Since(start).Milliseconds()})
			}
			return nil
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%d of %d slots moved within %s", done, len(targets), timeout)
			if lastErr != "" {
				msg += "; last error: " + lastErr
			}
			return errors.New(msg + " (the moves go on: shoal ctl migrations)")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func bar(done, total, width int) string {
	n := width
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// printLease says which migrator holds the lease on the moves.
func printLease(out io.Writer, l *cluster.MigratorLease, now int64) {
	switch {
	case l == nil:
		fmt.Fprintln(out, "driven by: no migrator yet (none running? shoal manager --migrator=false needs a shoal migrator)")
	case now < l.Until:
		fmt.Fprintf(out, "driven by: %s (lease for %.1fs more)\n", l.Holder, float64(l.Until-now)/1000)
	default:
		fmt.Fprintf(out, "driven by: nobody (%s's lease expired %.1fs ago; is a migrator running?)\n", l.Holder, float64(now-l.Until)/1000)
	}
}

func printMigrations(out io.Writer, ms []*cluster.Migration) {
	if len(ms) == 0 {
		fmt.Fprintln(out, "no slot moves in progress")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tFROM\tTO\tSTATE\tATTEMPTS\tLAST ERROR")
	for _, m := range ms {
		state := m.State
		if m.Paused {
			state = "paused"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%s\n", m.Slot, m.From, m.To, state, m.Attempts, m.Error)
	}
	tw.Flush()
}

// ctlPlan is `shoal ctl rebalance` and `shoal ctl drain SHARD`.
func ctlPlan(ctx context.Context, c *manager.Client, cmd string, params []string, timeout time.Duration, asJSON bool, out io.Writer) error {
	dry, wait, maxMoves, shard := false, true, 0, 0
	for i := 0; i < len(params); i++ {
		switch p := params[i]; {
		case p == "--dry-run":
			dry = true
		case p == "--no-wait":
			wait = false
		case p == "--max-moves" && cmd == "rebalance" && i+1 < len(params):
			n, err := strconv.Atoi(params[i+1])
			if err != nil || n <= 0 {
				return fmt.Errorf("bad --max-moves %q", params[i+1])
			}
			maxMoves = n
			i++
		case cmd == "drain" && shard == 0:
			id, err := cluster.ParseShard(p)
			if err != nil {
				return err
			}
			shard = id
		default:
			return fmt.Errorf("unexpected argument %q\n\nusage: shoal ctl rebalance [--dry-run] [--max-moves N] [--no-wait] | drain SHARD [--dry-run] [--no-wait]", p)
		}
	}
	var plan *manager.PlanReply
	var err error
	if cmd == "drain" {
		if shard == 0 {
			return errors.New("usage: shoal ctl drain SHARD [--dry-run] [--no-wait]")
		}
		plan, err = c.Drain(ctx, shard, dry)
	} else {
		plan, err = c.Rebalance(ctx, dry, maxMoves)
	}
	if err != nil {
		return err
	}
	if asJSON && (dry || !wait) {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	if !asJSON {
		printPlan(out, plan)
	}
	if dry || !wait || len(plan.Moves) == 0 {
		return nil
	}
	targets := map[int]int{}
	for _, mv := range plan.Moves {
		targets[mv.Slot] = mv.To
	}
	return waitMoves(ctx, c, targets, timeout, asJSON, out)
}

// printPlan prints the moves as runs of consecutive slots with one
// source, target and reason.
func printPlan(out io.Writer, p *manager.PlanReply) {
	verb := "queued"
	if p.DryRun {
		verb = "planned (dry run, nothing moved)"
	}
	fmt.Fprintf(out, "%s: %s\n", verb, p.Reason)
	if len(p.Moves) == 0 {
		fmt.Fprintln(out, "no moves")
		return
	}
	moves := slices.Clone(p.Moves)
	slices.SortFunc(moves, func(a, b cluster.Move) int { return a.Slot - b.Slot })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOTS\tFROM\tTO\tWHY")
	for i := 0; i < len(moves); {
		j := i
		for j+1 < len(moves) && moves[j+1].Slot == moves[j].Slot+1 && moves[j+1].From == moves[i].From &&
			moves[j+1].To == moves[i].To && moves[j+1].Reason == moves[i].Reason {
			j++
		}
		r := strconv.Itoa(moves[i].Slot)
		if j > i {
			r += "-" + strconv.Itoa(moves[j].Slot)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r, moves[i].From, moves[i].To, moves[i].Reason)
		i = j + 1
	}
	tw.Flush()
	fmt.Fprintf(out, "%d slot moves\n", len(moves))
}

// ctlCreate is `shoal ctl create SHARDS [--nodes N] [--if-new]`. With
// --nodes it first waits, up to timeout, for the managers to answer and N
// storage nodes to be registered (a deployment's init step starts with
// everything else); with --if-new a cluster that has shards already is a
// success, so the step may run again.
func ctlCreate(ctx context.Context, c *manager.Client, params []string, timeout time.Duration,
	show func(*manager.Status, error) error) error {
	const usage = "usage: shoal ctl create SHARDS [--nodes N] [--if-new]"
	shards, nodes, ifNew := 0, 0, false
	for i := 0; i < len(params); i++ {
		switch p := params[i]; {
		case p == "--if-new":
			ifNew = true
		case p == "--nodes" && i+1 < len(params):
			n, err := strconv.Atoi(params[i+1])
			if err != nil || n < 1 {
				return fmt.Errorf("bad --nodes %q", params[i+1])
			}
			nodes = n
			i++
		case shards == 0:
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return fmt.Errorf("bad shard count %q", p)
			}
			shards = n
		default:
			return errors.New(usage)
		}
	}
	if shards == 0 {
		return errors.New(usage)
	}
	if nodes > 0 || ifNew {
		c.Retry = timeout
		deadline := time.Now().Add(timeout)
		for {
			st, err := c.Status(ctx)
			if err == nil && ifNew && len(st.Shards) > 0 {
				return show(st, nil)
			}
			if err == nil && len(st.Nodes) >= nodes {
				break
			}
			if time.Now().After(deadline) {
				if err != nil {
					return err
				}
				return fmt.Errorf("%d of %d nodes registered after %v", len(st.Nodes), nodes, timeout)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return show(c.Create(ctx, shards))
}
