package server

import (
	"net"

	"github.com/panjf2000/gnet/v2"

	"shoal/internal/memcache"
)

// mcConn is a memcached connection's protocol state (owned by its loop).
type mcConn struct {
	cmd     memcache.Command
	swallow int // input bytes still to discard (the data block of a refused item)
}

// Memcached counters, per event loop (statShard.mc), summed by "stats".
const (
	mcCmdGet = iota
	mcGetHits
	mcGetMisses
	mcCmdSet
	mcCmdTouch
	mcTouchHits
	mcTouchMisses
	mcCmdFlush
	mcCmdMeta
	mcDeleteHits
	mcDeleteMisses
	mcIncrHits
	mcIncrMisses
	mcDecrHits
	mcDecrMisses
	mcCasHits
	mcCasMisses
	mcCasBadval
	mcTotalItems
	mcNumStats
)

func (s *Server) isMemcachedConn(c gnet.Conn) bool {
	if s.mcPort == 0 {
		return false
	}
	a, ok := c.LocalAddr().(*net.TCPAddr)
	return ok && a.Port == s.mcPort
}

// mcTraffic is OnTraffic for a memcached connection: parse every complete
// request, execute it, and write all replies at once (as the RESP path).
func (s *Server) mcTraffic(c gnet.Conn, cl *Client) gnet.Action {
	if s.closing.Load() {
		return s.drainTraffic(c, cl)
	}
	m := cl.mc
	lim := s.limits.Load()
	if m.swallow > 0 {
		// Skipping a refused data block: drop what arrived, never buffer it.
		n, _ := c.Discard(min(c.InboundBuffered(), m.swallow))
		m.swallow -= n
		cl.shard.netIn.Add(int64(n))
		if m.swallow > 0 {
			return s.finishTraffic(c, cl)
		}
	}
	if cl.inbuf != nil {
		// A large item gathered in the client's own buffer (see OnTraffic).
		if c.InboundBuffered() > 0 {
			b, _ := c.Next(-1)
			cl.inbuf = growAppend(cl.inbuf, b, cl.need)
		}
		if len(cl.inbuf) >= cl.need {
			consumed := s.mcProcess(cl, cl.inbuf, lim)
			if rest := len(cl.inbuf) - consumed; rest == 0 {
				cl.inbuf = nil
			} else {
				cl.inbuf = append(cl.inbuf[:0], cl.inbuf[consumed:]...)
			}
		}
		if int64(cl.need) > lim.queryBuf || int64(len(cl.inbuf)) > lim.queryBuf {
			cl.closeAfterReply = true
		}
		return s.finishTraffic(c, cl)
	}
	inb := c.InboundBuffered()
	if inb > 0 && inb >= cl.need {
		buf, _ := c.Peek(-1)
		consumed := s.mcProcess(cl, buf, lim)
		if consumed > 0 {
			_, _ = c.Discard(consumed)
		}
		if m.swallow > 0 {
			n, _ := c.Discard(min(c.InboundBuffered(), m.swallow))
			m.swallow -= n
		}
		if int64(cl.need) > lim.queryBuf || int64(c.InboundBuffered()) > lim.queryBuf {
			cl.closeAfterReply = true
		} else if cl.need > bigRequest && !cl.closeAfterReply {
			b, _ := c.Next(-1)
			cl.inbuf = growAppend(nil, b, cl.need)
		}
	}
	return s.finishTraffic(c, cl)
}

// mcProcess runs every complete request in buf and returns the bytes
// consumed, including any part of a data block being swallowed (the rest
// is left in cl.mc.swallow). It sets cl.need for an incomplete request.
func (s *Server) mcProcess(cl *Client, buf []byte, lim *runtimeLimits) int {
	cl.lastCmd.Store(s.db.Tick())
	m := cl.mc
	consumed := 0
	for consumed < len(buf) && !cl.closeAfterReply {
		n := memcache.Parse(buf[consumed:], &m.cmd, lim.mc)
		if n == 0 {
			cl.need = m.cmd.Need
			break
		}
		cl.need = 0
		consumed += n
		if s.journaling() {
			before := s.lastLSN()
			s.mcExec(cl, &m.cmd)
			// The records of this command, if any, are at most the last:
			// its reply waits until the log (and sync-replicas) have them.
			if last := s.lastLSN(); last != before {
				cl.walLSN = last
			}
		} else {
			s.mcExec(cl, &m.cmd)
		}
		if sw := m.cmd.Swallow; sw > 0 {
			k := min(sw, len(buf)-consumed)
			consumed += k
			if sw > k {
				m.swallow = sw - k
				break
			}
		}
	}
	cl.shard.netIn.Add(int64(consumed))
	m.cmd.Data, m.cmd.Key, m.cmd.RawKey, m.cmd.Name = nil, nil, nil, nil
	return consumed
}
