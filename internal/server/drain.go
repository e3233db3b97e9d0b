package server

import (
	"time"

	"github.com/panjf2000/gnet/v2"
)

// drainTimeout bounds how long shutdown waits for clients to receive the
// replies they already have.
const drainTimeout = 5 * time.Second

// drainClients runs at shutdown before the engine stops. Every client
// stops executing commands and is closed once the replies already
// produced for it are written: gnet's own close makes a single
// non-blocking write attempt, which cuts a large reply short. Clients
// that do not read are abandoned after timeout.
func (s *Server) drainClients(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var conns []gnet.Conn
	for s.nclients.Load() > 0 && time.Now().Before(deadline) {
		conns = conns[:0]
		s.clientsMu.Lock()
		for _, cl := range s.clients {
			conns = append(conns, cl.conn)
		}
		s.clientsMu.Unlock()
		for _, c := range conns {
			_ = c.Wake(nil)
		}
		// gnet reports no event when an outbound buffer becomes empty,
		// so check again shortly.
		time.Sleep(5 * time.Millisecond)
	}
}

// drainTraffic is OnTraffic during shutdown: input is dropped, pending
// output is flushed, and the connection closes once nothing is left.
func (s *Server) drainTraffic(c gnet.Conn, cl *Client) gnet.Action {
	cl.drainOutbox()
	if n := c.InboundBuffered(); n > 0 {
		_, _ = c.Discard(n)
	}
	if len(cl.held) > 0 || cl.walLSN > 0 {
		// Replies held for the log go out only if their records made it
		// to disk (Close synced the log first); otherwise they are
		// dropped: a write that was not persisted is never acknowledged.
		if s.holdReplies(cl) {
			cl.held = nil
			return gnet.Close
		}
	}
	if len(cl.w.B) > 0 {
		_, _ = c.Write(cl.w.B)
		cl.w.B = cl.w.B[:0]
	}
	if c.OutboundBuffered() > 0 && !cl.killed.Load() {
		return gnet.None
	}
	return gnet.Close
}
