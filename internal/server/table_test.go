package server

import (
	"testing"

	"shoal/internal/command"
)

// Every command in the table has a handler and every handler a table entry:
// the table is what COMMAND reports and what the proxy will route by.
func TestEveryCommandHasAHandler(t *testing.T) {
	for name := range command.Table {
		if handlers[name] == nil {
			t.Errorf("command %q is in the table but has no handler", name)
		}
	}
	for name := range handlers {
		if command.Table[name] == nil {
			t.Errorf("handler %q has no table entry", name)
		}
	}
}
