package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shoal/internal/config"
	"shoal/internal/proxy"
	"shoal/internal/tlsconf"
)

// runProxy is `shoal proxy`: the stateless routing node for plain Redis
// and memcached clients (docs/proxy.md).
func runProxy(args []string) error {
	cfg := proxy.DefaultConfig()
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.StringVar(&cfg.Managers, "manager", "", "manager HTTP address(es), comma-separated (required)")
	fs.IntVar(&cfg.Port, "port", 6380, "RESP port")
	fs.StringVar(&cfg.Bind, "bind", cfg.Bind, "listen address")
	mcPort := fs.Int("memcached-port", 0, "memcached port (0: off)")
	fs.DurationVar(&cfg.RetryBudget, "retry-budget", cfg.RetryBudget, "how long a command is retried across failovers and redirects")
	fs.IntVar(&cfg.PoolSize, "pool", cfg.PoolSize, "pipelined connections per backend node (clients not on an event loop)")
	fs.IntVar(&cfg.LoopPoolSize, "loop-pool", cfg.LoopPoolSize, "pipelined connections per backend node for each event loop")
	fs.StringVar(&cfg.ReadFrom, "read-from", cfg.ReadFrom, "primary, or replica-preferred: read-only commands to a replica (READONLY)")
	outLimit := fs.String("client-output-limit", "64mb", "reply bytes held for one client before it is disconnected (0: no limit)")
	queryLimit := fs.String("client-query-buffer-limit", "64mb", "unparsed request bytes held for one waiting client before it is disconnected (at least 1mb)")
	fs.IntVar(&cfg.HotKeySample, "hot-key-sample", cfg.HotKeySample, "count one keyed command in N in the hot-key sketch (a power of two)")
	fs.DurationVar(&cfg.HotKeyHalfLife, "hot-key-half-life", cfg.HotKeyHalfLife, "hot-key scores are halved every half-life")
	adminPort := fs.Int("admin-port", 0, "admin HTTP port: /metrics, /healthz, /readyz on --bind (0: off)")
	adminAddr := fs.String("admin-addr", "", "admin HTTP host:port (instead of --admin-port, to listen on another address)")
	hotCache := fs.String("hot-key-cache", "", "N,TTL: cache the N hottest keys' GET/get replies for TTL (e.g. 100,200ms; off by default)")
	fs.StringVar(&cfg.ManagerToken, "manager-token", "", "bearer token for the managers' API (their --cluster-token or --admin-token); also $SHOAL_MANAGER_TOKEN")
	fs.StringVar(&cfg.ManagerCAFile, "manager-tls-ca-cert-file", "", "call the managers over HTTPS, trusting this CA")
	fs.StringVar(&cfg.RequirePass, "requirepass", "", "password of the default user for the proxy's clients (AUTH)")
	fs.Func("user", "an ACL user for the proxy's clients, as the server's user directive: \"alice on >pw ~app:* +@all\" (repeatable)", func(v string) error {
		cfg.Users = append(cfg.Users, v)
		return nil
	})
	fs.StringVar(&cfg.Backend.User, "backend-user", "", "user the proxy logs in as on the storage nodes (with --backend-pass)")
	fs.StringVar(&cfg.Backend.Pass, "backend-pass", "", "password the proxy sends to the storage nodes (their requirepass, or --backend-user's); also $SHOAL_BACKEND_PASS")
	tlsPort := fs.Int("tls-port", 0, "RESP over TLS on this port too (0: off; needs --tls-cert-file, --tls-key-file)")
	tlsCert := fs.String("tls-cert-file", "", "the TLS port's certificate")
	tlsKey := fs.String("tls-key-file", "", "the TLS port's key")
	tlsCA := fs.String("tls-ca-cert-file", "", "CA of the client certificates the TLS port accepts")
	tlsAuth := fs.String("tls-auth-clients", "yes", "yes: clients need a certificate signed by --tls-ca-cert-file; optional; no")
	backendCA := fs.String("backend-tls-ca-cert-file", "", "connect to the nodes' tls-port over TLS, trusting this CA")
	backendCert := fs.String("backend-tls-cert-file", "", "client certificate presented to the nodes (with --backend-tls-key-file)")
	backendKey := fs.String("backend-tls-key-file", "", "key of --backend-tls-cert-file")
	fs.IntVar(&cfg.EventLoops, "event-loops", cfg.EventLoops, "event loops serving plain RESP clients and their backend connections (0: a goroutine per client)")
	threads := fs.Int("threads", 1, "OS threads running the proxy's goroutines (GOMAXPROCS; 0: one per CPU)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *threads < 0:
		return fmt.Errorf("--threads %d: must be 0 (one per CPU) or more", *threads)
	case *threads > 0:
		// One thread by default: a proxy shares its machine with clients
		// or nodes, and on 2 cores one thread spent ~10-15 % less CPU
		// per request than two (fewer thread wake-ups), with more
		// throughput. Give it the cores it has to itself.
		runtime.GOMAXPROCS(*threads)
	}
	if *tlsPort > 0 {
		tc, err := tlsconf.Server(*tlsCert, *tlsKey, *tlsCA, *tlsAuth)
		if err != nil {
			return fmt.Errorf("--tls-port: %w", err)
		}
		cfg.TLSPort, cfg.TLS = *tlsPort, tc
	}
	if *backendCA != "" {
		tc, err := tlsconf.Client(*backendCA, *backendCert, *backendKey)
		if err != nil {
			return fmt.Errorf("--backend-tls-ca-cert-file: %w", err)
		}
		cfg.BackendTLS = tc
	}
	if cfg.ManagerToken == "" {
		cfg.ManagerToken = os.Getenv("SHOAL_MANAGER_TOKEN")
	}
	if cfg.Backend.Pass == "" {
		cfg.Backend.Pass = os.Getenv("SHOAL_BACKEND_PASS")
	}
	var err error
	if cfg.ClientOutputLimit, err = config.ParseBytes(*outLimit); err != nil {
		return fmt.Errorf("--client-output-limit: %w", err)
	}
	if cfg.ClientQueryLimit, err = config.ParseBytes(*queryLimit); err != nil {
		return fmt.Errorf("--client-query-buffer-limit: %w", err)
	}
	if *hotCache != "" {
		if cfg.HotKeyCache, cfg.HotKeyCacheTTL, err = parseHotKeyCache(*hotCache); err != nil {
			return err
		}
	}
	switch {
	case *adminAddr != "":
		cfg.AdminAddr = *adminAddr
	case *adminPort > 0:
		cfg.AdminAddr = net.JoinHostPort(cfg.Bind, strconv.Itoa(*adminPort))
	}
	cfg.MCPort = -1
	if *mcPort > 0 {
		cfg.MCPort = *mcPort
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Log = log
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = p.Start(sctx)
	cancel()
	if err != nil {
		return err
	}
	log.Info("proxy ready", "component", "proxy", "resp", p.Addr(), "tls", p.TLSAddr(), "memcached", p.MCAddr(), "admin", p.AdminAddr())
	<-ctx.Done()
	log.Info("received signal, shutting down", "component", "proxy")
	if err := p.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// parseHotKeyCache parses --hot-key-cache N,TTL ("0" or "off": no cache).
func parseHotKeyCache(v string) (int, time.Duration, error) {
	if v == "0" || v == "off" {
		return 0, 0, nil
	}
	ns, ts, ok := strings.Cut(v, ",")
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err != nil || n < 0 {
		return 0, 0, fmt.Errorf("--hot-key-cache %q: want N,TTL (e.g. 100,200ms)", v)
	}
	ttl, err := time.ParseDuration(strings.TrimSpace(ts))
	if err != nil {
		return 0, 0, fmt.Errorf("--hot-key-cache %q: bad TTL: %w", v, err)
	}
	return n, ttl, nil
}
