// Package admin is the admin HTTP endpoint every node role serves on its
// admin port: /metrics (Prometheus text format, from the role's own
// registry: many nodes may run in one test process, so nothing uses the
// global default registry), /healthz (the process answers) and /readyz
// (the role's readiness check). Roles add their own handlers with
// Handle before Start.
//
// One goroutine (net/http's server loop, plus one per request) runs from
// Start to Close.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures an admin endpoint.
type Config struct {
	// Addr is host:port to listen on (port 0: any free port).
	Addr string
	// Gatherer provides /metrics (a *prometheus.Registry).
	Gatherer prometheus.Gatherer
	// Ready reports whether the role can serve traffic (/readyz): nil
	// is ready; an error is answered 503 with its text. Nil: always ready.
	Ready func() error
	Log   *slog.Logger
}

// Server is one admin HTTP endpoint.
type Server struct {
	cfg Config
	mux *http.ServeMux
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

// New builds the endpoint; it listens on Start.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	if cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slogPrinter{cfg.Log},
			ErrorHandling: promhttp.ContinueOnError,
			Timeout:       10 * time.Second,
		}))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return s
}

// Handle adds a handler (before Start).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves the endpoint's paths: a role with an HTTP server of
// its own (the manager) mounts them there instead of calling Start.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Warn("admin endpoint stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the listening address (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving: it waits up to 2 s for requests in progress,
// then closes their connections.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	s.wg.Wait()
	return nil
}

// slogPrinter routes promhttp's error log to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics: " + fmt.Sprint(v...)) }
