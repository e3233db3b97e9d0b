// Package gnetlog routes gnet's log calls to slog (the storage node's and
// the proxy's event loops both run on gnet).
package gnetlog

import (
	"fmt"
	"log/slog"
)

// Logger is a gnet logging.Logger writing warnings and errors to L
// (debug and info are dropped; a fatal is logged as an error: gnet's
// callers decide whether to stop).
type Logger struct{ L *slog.Logger }

func (g Logger) Debugf(string, ...any) {}
func (g Logger) Infof(string, ...any)  {}
func (g Logger) Warnf(f string, a ...any) {
	g.L.Warn(fmt.Sprintf(f, a...), "source", "gnet")
}
func (g Logger) Errorf(f string, a ...any) {
	g.L.Error(fmt.Sprintf(f, a...), "source", "gnet")
}
func (g Logger) Fatalf(f string, a ...any) {
	g.L.Error(fmt.Sprintf(f, a...), "source", "gnet")
}
