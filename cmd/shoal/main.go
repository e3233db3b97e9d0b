// Command shoal is the single binary of Shoal: storage node, manager,
// migrator, proxy, admin CLI and local dev cluster, as subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/persist"
	"shoal/internal/server"
)

const usage = `usage: shoal <command> [arguments]

commands:
  server [config-file] [--directive value ...]
             run a storage node (standalone: a drop-in for redis-server);
             directives as in redis.conf, e.g. --port 6379 --maxmemory 1gb;
             --admin-port P (or --admin-addr H:P) serves Prometheus
             /metrics, /healthz and /readyz (docs/metrics.md)
  check-aof [--fix] PATH
             verify the append-only log: PATH is the log directory
             (dir/appendonlydir: every segment, in order) or one segment
             file. A torn last record (crash while writing) is reported
             and, with --fix, cut off (start-up does that too); damage in
             the middle is reported with file and offset, exit status 1;
             --fix then truncates at the bad record and removes the later
             segments (their records are lost)
  check-snapshot [-q] FILE
             verify a snapshot (checksums, every entry) and print per-slot
             and total counts; exit status 1 if it is damaged (the error
             gives the offset)
  manager [--id ID] [--bootstrap | --join ADDR | --bootstrap-id ID --join ADDR] [--http-addr H:P] [--raft-addr H:P]
          [--http-advertise H:P] [--raft-advertise H:P] [--dir DIR] [--migrator=false]
             run a management node (Raft over 1, 3 or 5 managers; docs/cluster.md);
             /metrics, /healthz and /readyz on its HTTP address; its leader
             drives the slot moves unless --migrator=false
  migrator --manager ADDR[,...] [--id ID] [--lease 5s] [--admin-port P | --admin-addr H:P]
             a standalone migration node: drives the slot moves queued in
             the map (shoal ctl migrate, rebalance, drain) through the
             managers' API while it holds the migrator lease; run several
             (and/or the managers' built-in one): the others stand by and
             take over once the holder's lease expires (docs/cluster.md)
  ctl [--manager ADDR] [--json] COMMAND
             admin CLI: status, nodes, create, add-shard, remove-node,
             failover, config get|set, map (shoal ctl --help)
  dev [--dir DIR] [--base-port N] [--shards 3] [--replicas 1] [--sync-replicas 0] [--restart]
             a whole cluster on 127.0.0.1 as child processes; prints
             "name: address" lines, then "ready"; Ctrl-C stops it
  proxy --manager ADDR[,...] [--port 6380] [--bind 127.0.0.1] [--memcached-port M] [--retry-budget 5s] [--client-output-limit 64mb] [--read-from primary|replica-preferred]
        [--hot-key-sample 8] [--hot-key-half-life 1s] [--hot-key-cache N,TTL] [--admin-port P | --admin-addr H:P] [--threads 1] [--event-loops 1]
             the routing node for plain (non-cluster) Redis and memcached
             clients: routes by slot, splits multi-key commands, retries
             across failovers, ranks hot keys (shoal ctl hotkeys) and can
             cache their reads; Prometheus /metrics, /healthz and /readyz
             on the admin port (docs/proxy.md, docs/metrics.md)
  version    print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "check-snapshot":
		err = checkSnapshot(os.Args[2:], os.Stdout)
	case "check-aof":
		err = checkAOF(os.Args[2:], os.Stdout)
	case "version", "--version", "-v":
		fmt.Printf("shoal %s (redis %s compatible, protocol %d, peers from protocol %d)\n", server.ShoalVersion, server.RedisVersion,
			cluster.ProtocolVersion, cluster.MinProtocolVersion)
	case "help", "-h", "--help":
		fmt.Print(usage)
	case "manager":
		err = runManager(os.Args[2:])
	case "ctl":
		err = runCtl(os.Args[2:], os.Stdout)
	case "dev":
		err = runDev(os.Args[2:], os.Stdout)
	case "proxy":
		err = runProxy(os.Args[2:])
	case "migrator":
		err = runMigrator(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "shoal: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}

func runServer(args []string) error {
	cfg := config.Default()
	if err := cfg.ParseArgs(args); err != nil {
		return err
	}
	var logOut io.Writer = os.Stderr
	level := slog.LevelInfo
	var pidfile string
	cfg.Read(func(c *config.Config) {
		switch c.LogLevel {
		case "debug", "verbose":
			level = slog.LevelDebug
		case "warning":
			level = slog.LevelWarn
		case "nothing":
			level = slog.LevelError + 4
		}
		if c.LogFile != "" {
			f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				logOut = f
			}
		}
		pidfile = c.PidFile
	})
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if addr := os.Getenv("SHOAL_PPROF_ADDR"); addr != "" {
		// Profiling endpoint for operators and benchmarks (loopback only by convention).
		go func() { log.Warn("pprof server stopped", "err", http.ListenAndServe(addr, nil)) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	if pidfile != "" {
		if err := os.WriteFile(pidfile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			log.Warn("cannot write pidfile", "path", pidfile, "err", err)
		}
		defer os.Remove(pidfile)
	}
	select {
	case <-ctx.Done():
		log.Info("received signal, shutting down")
		if err := srv.SaveOnExit(); err != nil {
			log.Error("could not save the snapshot on exit", "err", err)
		}
	case <-srv.ShutdownRequested():
		log.Info("SHUTDOWN requested, shutting down")
	}
	if err := srv.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("bye")
	return nil
}

// checkAOF is `shoal check-aof [--fix] PATH`.
func checkAOF(args []string, out io.Writer) error {
	fix := false
	if len(args) > 0 && (args[0] == "--fix" || args[0] == "-fix") {
		fix, args = true, args[1:]
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: shoal check-aof [--fix] PATH (the log directory or one segment)")
	}
	path := args[0]
	base := "appendonly.aof"
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		// A segment's base is its name without the index.
		if i := strings.LastIndexByte(filepath.Base(path), '.'); i > 0 {
			base = filepath.Base(path)[:i]
		}
	}
	info, err := persist.CheckLog(nil, path, base)
	var ce *persist.LogCorruptError
	if errors.As(err, &ce) {
		fmt.Fprintf(out, "%v\n", err)
		if !fix {
			return fmt.Errorf("the log is damaged; records up to %d are valid (run with --fix to cut it there)", info.Last)
		}
		dir := path
		if fi, serr := os.Stat(path); serr == nil && !fi.IsDir() {
			dir = filepath.Dir(path)
		}
		removed, rerr := persist.RepairLog(nil, dir, base, ce)
		if rerr != nil {
			return fmt.Errorf("repair: %w", rerr)
		}
		fmt.Fprintf(out, "truncated %s at offset %d", ce.Path, ce.Offset)
		if len(removed) > 0 {
			fmt.Fprintf(out, "; removed the later segments %s", strings.Join(removed, " "))
		}
		fmt.Fprintf(out, "\nthe log now ends at record %d\n", info.Last)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "segments: %d, records: %d (sequence numbers %d..%d), %d bytes\n",
		max(len(info.Segments), 1), info.Records, info.First, info.Last, info.Bytes)
	if t := info.Torn; t != nil {
		fmt.Fprintf(out, "incomplete last record at offset %d of %s (%d bytes after it)\n", t.Offset, t.Path, t.Size-t.Offset)
		if !fix {
			fmt.Fprintln(out, "start-up cuts it off; run with --fix to cut it now")
			return nil
		}
		if err := persist.CutTorn(nil, t); err != nil {
			return fmt.Errorf("cut: %w", err)
		}
		fmt.Fprintln(out, "cut")
		return nil
	}
	fmt.Fprintln(out, "OK")
	return nil
}

// checkSnapshot is `shoal check-snapshot [-q] FILE`.
func checkSnapshot(args []string, out io.Writer) error {
	quiet := false
	if len(args) > 0 && args[0] == "-q" {
		quiet, args = true, args[1:]
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: shoal check-snapshot [-q] FILE")
	}
	rep, err := persist.CheckFile(args[0])
	if err != nil {
		return err
	}
	if !quiet {
		for _, sl := range rep.Slots {
			fmt.Fprintf(out, "slot %5d  mark %d  keys %d  bytes %d\n", sl.Slot, sl.Mark, sl.Keys, sl.Bytes)
		}
	}
	fmt.Fprintf(out, "%s: ok, format version %d, created %s\n", args[0], rep.Header.Version, rep.Header.Created.UTC().Format("2006-01-02T15:04:05.000Z"))
	fmt.Fprintf(out, "sections %d, keys %d (volatile %d), bytes %d\n", rep.Sections, rep.Keys, rep.Volatile, rep.Bytes)
	for t, n := range rep.ByType {
		fmt.Fprintf(out, "  %-6s %d\n", engine.TypeName(uint8(t)), n)
	}
	return nil
}
