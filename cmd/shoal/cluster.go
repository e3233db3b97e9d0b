package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/manager"
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
	logLevel := fs.String("loglevel", "info", "debug, info, warning")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		*dir = "manager-" + *id
	}
	cfg := manager.Config{ID: *id, RaftAddr: *raftAddr, HTTPAddr: *httpAddr, Dir: *dir, Bootstrap: *bootstrap,
		Logger: newLogger(os.Stderr, *logLevel)}
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

const ctlUsage = `usage: shoal ctl [--manager ADDR[,ADDR...]] [--json] <command> [args]

commands:
  status                 cluster health, shards, primaries/replicas, slots, epochs, lag
  nodes                  storage nodes with role, liveness, offset, memory, keys
  create SHARDS          first shards from the registered idle nodes (slots by weight)
  add-shard NODE...      a new shard of idle nodes (ids or RESP addresses; first = primary)
  remove-node NODE       remove a node (a primary owning slots: fail over first)
  failover SHARD [--timeout 10s]
                         graceful failover: fence the primary, let a replica catch up, switch
  config get [KEY]       cluster settings (heartbeat_ms, lease_ms, margin_ms, sync_replicas,
                         replicas_per_shard)
  config set KEY VALUE
  map                    the raw cluster map (JSON)

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
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case a == "--manager" || a == "-manager" || a == "--timeout":
			if i+1 >= len(args) {
				return fmt.Errorf("%s needs a value", a)
			}
			if a == "--timeout" {
				d, err := time.ParseDuration(args[i+1])
				if err != nil {
					return fmt.Errorf("bad --timeout: %w", err)
				}
				timeout = d
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
	c := manager.NewClient(addr)
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
		if err := need(1, "SHARDS"); err != nil {
			return err
		}
		n, err := strconv.Atoi(params[0])
		if err != nil {
			return fmt.Errorf("bad shard count %q", params[0])
		}
		st, err := c.Create(ctx, n)
		return show(st, err)
	case "add-shard":
		if len(params) == 0 {
			return errors.New("usage: shoal ctl add-shard NODE...")
		}
		st, err := c.AddShard(ctx, params)
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
	fmt.Fprintln(tw, "SHARD\tEPOCH\tSLOTS\tPRIMARY\tREPLICAS (lag)\tSTATE")
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
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\n", s.ID, s.Epoch, s.Slots, s.Primary, strings.Join(reps, ", "), state)
	}
	tw.Flush()
	if len(st.Failovers) > 0 {
		fmt.Fprintln(out, "\nrecent failovers:")
		for _, f := range st.Failovers {
			fmt.Fprintf(out, "  %s  shard %d  %s -> %s  (%s)\n", f.Time.Format(time.TimeOnly), f.Shard, short(f.FromNode), short(f.ToNode), f.Reason)
		}
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func printNodes(out io.Writer, nodes []manager.NodeStatus) {
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Shard < nodes[j].Shard })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tSHARD\tROLE\tALIVE\tSEEN(ms)\tOFFSET\tSYNCED\tOPS/S\tMEMORY\tKEYS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\t%d\t%d\t%v\t%.0f\t%d\t%d\n", short(n.ID), n.Addr, n.Shard, n.Role, n.Alive,
			n.LastSeenMs, n.Offset, n.Synced, n.OpsPerSec, n.UsedMemory, n.Keys)
	}
	tw.Flush()
}
