package proxy

import (
	"bytes"
	"strconv"
	"time"
)

// A shardCall is a call routed by slot (or to a shard's primary, for
// fan-outs) with the retry state of one request to one shard.
type shardCall struct {
	call
	p        *Proxy
	body     []byte // the request frame without ASKING
	slot     int    // routing slot; -1: route by shard
	shard    int
	readonly bool // safe to resend after a dropped connection
	mc       bool // memcached backend
	target   string
	asking   bool
	deadline time.Time
	attempt  int
	finish   func(reply []byte) // called exactly once (or, when nil, fin.complete)
	fin      *req
	blk      *blockState // a blocking command: sent on a dedicated connection
	replica  bool        // a read a replica may serve (--read-from replica-preferred), first attempt only
	r3       bool        // for a RESP3 client: sent on connections that said HELLO 3
	sentTo   string      // the address of the last attempt (metrics)
	why      int         // why the next attempt is made (retry reason)
}

var askingFrame = []byte("*1\r\n$6\r\nASKING\r\n")

// flushSet collects the backend connections a client reader appended
// to during one read batch; it flushes them once at the end of the batch.
type flushSet []*bconn

func (fs *flushSet) add(bc *bconn) {
	for _, x := range *fs {
		if x == bc {
			return
		}
	}
	*fs = append(*fs, bc)
}

// flush has every collected connection written soon (bconn.kick): the
// client's requests are not held back, and other clients' requests to
// the same node join them in one write.
func (fs *flushSet) flush() {
	for i, bc := range *fs {
		bc.kick()
		(*fs)[i] = nil
	}
	*fs = (*fs)[:0]
}

// start sends sc for the first time; with fs the flush is left to the
// caller (fs.flush), without it the request is written at once.
func (p *Proxy) start(sc *shardCall, fs *flushSet) {
	sc.p = p
	sc.sc = sc
	sc.done = shardCallDone
	p.stats.cmds.Add(1)
	p.dispatch(sc, fs)
}

func (p *Proxy) dispatch(sc *shardCall, fs *flushSet) {
	addr := sc.target
	if addr == "" {
		rt := p.table.Load()
		shard := sc.shard
		if sc.slot >= 0 {
			shard = int(rt.slots[sc.slot])
		}
		if sc.replica && sc.attempt == 0 {
			// Retries go to the primary: a replica that is down,
			// loading or behind a map change must not cost the budget.
			if ra := rt.replicaAddr(shard, sc.mc, sc.pin); ra != "" {
				sc.frame = sc.body
				sc.sentTo = ra
				if bc := p.backendFor(ra, sc.mc, true, sc.r3).send(&sc.call); bc != nil {
					if fs != nil {
						fs.add(bc)
					} else {
						bc.flush()
					}
				}
				return
			}
		}
		addr = rt.addr(shard, sc.mc)
	}
	if addr == "" {
		sc.reply = sc.reply[:0]
		if sc.mc {
			sc.reply = append(sc.reply, "SERVER_ERROR CLUSTERDOWN Hash slot not served\r\n"...)
		} else {
			sc.reply = append(sc.reply, "-CLUSTERDOWN Hash slot not served\r\n"...)
		}
		sc.onDone(&sc.call)
		return
	}
	sc.frame = sc.body
	sc.sentTo = addr
	if sc.asking && !sc.mc {
		sc.frame = append(append(make([]byte, 0, len(askingFrame)+len(sc.body)), askingFrame...), sc.body...)
		sc.skip = 1
	}
	if sc.blk != nil {
		p.dispatchBlocking(sc, addr)
		return
	}
	bc := p.backendFor(addr, sc.mc, false, sc.r3).send(&sc.call)
	if bc == nil {
		return
	}
	if fs != nil {
		fs.add(bc)
	} else {
		bc.flush()
	}
}

// onDone runs when a backend attempt ends: retry what may be retried,
// deliver the rest.
func (sc *shardCall) onDone(*call) {
	p := sc.p
	batch := sc.batch
	sc.batch = nil
	if sc.blk == nil && sc.err == nil && !isRedirect(sc.reply, sc.mc) {
		// The common case: no clock read, no retry state.
		if sc.finish == nil && batch != nil {
			sc.fin.completeIn(sc.reply, batch)
			return
		}
		sc.deliver(sc.reply)
		return
	}
	// The retry budget counts from the first attempt that failed (a
	// redirect, a lost connection), or for a blocking command from the
	// end of its wait: a redirect may come after a long block.
	now := time.Now()
	if sc.blk != nil {
		sc.endBlocking()
		if sc.blk.gone.Load() {
			sc.deliver(errLine("ERR shoal proxy: " + errClientGone.Error()))
			return
		}
		if sc.attempt == 0 {
			sc.deadline = now.Add(p.cfg.RetryBudget)
		}
	}
	if sc.deadline.IsZero() {
		sc.deadline = now.Add(p.cfg.RetryBudget)
	}
	inBudget := now.Before(sc.deadline) && p.ctx.Err() == nil
	if sc.err != nil {
		if inBudget && (!sc.written || sc.readonly) {
			sc.target, sc.asking = "", false
			sc.why = retryConn
			p.refresh()
			go sc.retry(true)
			return
		}
		msg := "ERR shoal proxy: connection to the backend lost: " + sc.err.Error()
		if sc.written && !sc.readonly {
			msg += " (the command may have been applied)"
		}
		if sc.mc {
			sc.deliver([]byte("SERVER_ERROR " + msg + "\r\n"))
		} else {
			sc.deliver([]byte("-" + msg + "\r\n"))
		}
		return
	}
	if inBudget {
		if kind, addr := redirect(sc.reply, sc.mc); kind != 0 {
			switch kind {
			case 'M':
				sc.target, sc.asking, sc.why = addr, false, retryMoved
				p.refresh()
				go sc.retry(false)
			case 'A':
				sc.target, sc.asking, sc.why = addr, true, retryAsk
				go sc.retry(false)
			default:
				// A cutover's TRYAGAIN from the node a MOVED or ASK sent
				// this request to: that node imports the slot and waits
				// for its flip, which the source already took. It is
				// asked again; the map (the source's, until this proxy
				// has the flip) would bounce each retry through the
				// source's MOVED.
				if sc.target == "" || !fenced(sc.reply) {
					sc.target, sc.asking = "", false
				}
				sc.why = retryTryAgain
				p.refresh()
				go sc.retry(true)
			}
			return
		}
	}
	sc.deliver(sc.reply)
}

// retry sends sc again; with wait, after the route table changes or a
// short backoff, whichever comes first.
func (sc *shardCall) retry(wait bool) {
	p := sc.p
	p.stats.retries.Add(1)
	p.met.retry(sc.sentTo, sc.why)
	sc.attempt++
	if wait {
		ch := *p.changed.Load()
		limit := 100 * time.Millisecond
		if sc.why == retryTryAgain && fenced(sc.reply) {
			// A slot move's cutover: it ends within tens of ms, and the
			// nodes may learn the flip before this proxy's map does (the
			// migrator pushes it), so ask again often.
			limit = fencedRetryMax
		}
		backoff := min(time.Duration(1<<min(sc.attempt, 6))*2*time.Millisecond, limit)
		t := time.NewTimer(backoff)
		select {
		case <-ch:
		case <-t.C:
		case <-p.ctx.Done():
		}
		t.Stop()
	}
	sc.reply, sc.err, sc.written, sc.skip, sc.next = nil, nil, false, 0, nil
	p.dispatch(sc, nil)
}

// fencedRetryMax is the longest wait between retries of a write refused
// by a slot's cutover (TRYAGAIN); other refusals (CLUSTERDOWN, LOADING...)
// back off up to 100 ms.
const fencedRetryMax = 8 * time.Millisecond

// fenced reports whether reply is a cutover's TRYAGAIN ("TRYAGAIN Slot
// N is moving...", RESP or memcached), not a primary without its lease.
func fenced(reply []byte) bool {
	return bytes.Contains(reply[:min(len(reply), 32)], []byte("TRYAGAIN Slot "))
}

// deliver hands the final reply over (exactly once).
func (sc *shardCall) deliver(reply []byte) {
	if sc.finish != nil {
		sc.finish(reply)
		return
	}
	sc.fin.complete(reply)
}

// shardCallDone is every shardCall's call.done (a function value, not a
// method value: no allocation per request).
func shardCallDone(c *call) { c.sc.onDone(c) }

// isRedirect reports cheaply whether redirect may classify r as a
// redirect (an error reply: a RESP error, or a memcached SERVER_ERROR).
func isRedirect(r []byte, mc bool) bool {
	if mc {
		return bytes.HasPrefix(r, []byte("SERVER_ERROR "))
	}
	return len(r) > 0 && r[0] == '-'
}

// redirect classifies a reply: 'M' (MOVED, addr), 'A' (ASK, addr), 'T'
// (TRYAGAIN, CLUSTERDOWN, READONLY, LOADING: the command did not run;
// wait for a new map) or 0.
func redirect(r []byte, mc bool) (byte, string) {
	var msg []byte
	if mc {
		if !bytes.HasPrefix(r, []byte("SERVER_ERROR ")) {
			return 0, ""
		}
		msg = r[len("SERVER_ERROR "):]
	} else {
		if len(r) == 0 || r[0] != '-' {
			return 0, ""
		}
		msg = r[1:]
	}
	msg = bytes.TrimRight(msg, "\r\n")
	switch {
	case bytes.HasPrefix(msg, []byte("MOVED ")), bytes.HasPrefix(msg, []byte("ASK ")):
		f := bytes.Fields(msg)
		if len(f) != 3 {
			return 0, ""
		}
		if _, err := strconv.Atoi(string(f[1])); err != nil {
			return 0, ""
		}
		return f[0][0], string(f[2])
	case bytes.HasPrefix(msg, []byte("TRYAGAIN")), bytes.HasPrefix(msg, []byte("CLUSTERDOWN")),
		bytes.HasPrefix(msg, []byte("READONLY ")), bytes.HasPrefix(msg, []byte("LOADING")):
		return 'T', ""
	}
	return 0, ""
}
