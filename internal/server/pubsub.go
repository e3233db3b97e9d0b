package server

import (
	"sort"
	"strings"
	"sync"

	"shoal/internal/glob"
	"shoal/internal/resp"
)

// pubsubHub is the registry of channel and pattern subscriptions.
type pubsubHub struct {
	mu       sync.RWMutex
	channels map[string]map[*Client]struct{}
	patterns map[string]map[*Client]struct{}
}

func newPubsubHub() *pubsubHub {
	return &pubsubHub{channels: map[string]map[*Client]struct{}{}, patterns: map[string]map[*Client]struct{}{}}
}

func init() {
	register("subscribe", cmdSubscribe)
	register("psubscribe", cmdPSubscribe)
	register("unsubscribe", cmdUnsubscribe)
	register("punsubscribe", cmdPUnsubscribe)
	register("publish", cmdPublish)
	register("pubsub", cmdPubsub)
}

func (cl *Client) subCount() int { return len(cl.subs) + len(cl.psubs) }

func subReply(w *resp.Writer, kind string, name []byte, count int) {
	w.Push(3)
	w.BulkString(kind)
	if name == nil {
		w.Null()
	} else {
		w.Bulk(name)
	}
	w.Int(int64(count))
}

func cmdSubscribe(c *Ctx)  { subscribe(c, false) }
func cmdPSubscribe(c *Ctx) { subscribe(c, true) }

func subscribe(c *Ctx, pattern bool) {
	if c.inExec {
		// Redis allows it but the subscription then outlives EXEC's reply
		// shape; refuse clearly instead.
		c.w.Error("ERR " + strings.ToUpper(c.spec.Name) + " is not allowed in a transaction")
		return
	}
	cl, h := c.cl, c.srv.hub
	set := &cl.subs
	reg := h.channels
	kind := "subscribe"
	if pattern {
		set, reg, kind = &cl.psubs, h.patterns, "psubscribe"
	}
	if *set == nil {
		*set = map[string]struct{}{}
	}
	for _, a := range c.args[1:] {
		name := string(a)
		if _, ok := (*set)[name]; !ok {
			(*set)[name] = struct{}{}
			h.mu.Lock()
			m := reg[name]
			if m == nil {
				m = map[*Client]struct{}{}
				reg[name] = m
			}
			m[cl] = struct{}{}
			h.mu.Unlock()
		}
		cl.nsubs.Store(int32(cl.subCount()))
		subReply(c.w, kind, a, cl.subCount())
	}
}

func cmdUnsubscribe(c *Ctx)  { unsubscribe(c, false) }
func cmdPUnsubscribe(c *Ctx) { unsubscribe(c, true) }

func unsubscribe(c *Ctx, pattern bool) {
	cl, h := c.cl, c.srv.hub
	set := cl.subs
	reg := h.channels
	kind := "unsubscribe"
	if pattern {
		set, reg, kind = cl.psubs, h.patterns, "punsubscribe"
	}
	names := make([]string, 0, len(c.args))
	if len(c.args) == 1 {
		for n := range set {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			subReply(c.w, kind, nil, cl.subCount())
			return
		}
	} else {
		for _, a := range c.args[1:] {
			names = append(names, string(a))
		}
	}
	for _, n := range names {
		if _, ok := set[n]; ok {
			delete(set, n)
			h.mu.Lock()
			if m := reg[n]; m != nil {
				delete(m, cl)
				if len(m) == 0 {
					delete(reg, n)
				}
			}
			h.mu.Unlock()
		}
		cl.nsubs.Store(int32(cl.subCount()))
		subReply(c.w, kind, []byte(n), cl.subCount())
	}
}

// removeClient drops every subscription of a closing client.
func (h *pubsubHub) removeClient(cl *Client) {
	if len(cl.subs)+len(cl.psubs) == 0 {
		return
	}
	h.mu.Lock()
	for n := range cl.subs {
		if m := h.channels[n]; m != nil {
			delete(m, cl)
			if len(m) == 0 {
				delete(h.channels, n)
			}
		}
	}
	for n := range cl.psubs {
		if m := h.patterns[n]; m != nil {
			delete(m, cl)
			if len(m) == 0 {
				delete(h.patterns, n)
			}
		}
	}
	h.mu.Unlock()
}

// publish sends msg to channel's subscribers and matching patterns and
// returns the number of receivers. Messages are encoded once per protocol.
func (h *pubsubHub) publish(channel, msg []byte) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	var enc [2][]byte
	if subs := h.channels[string(channel)]; len(subs) > 0 {
		for cl := range subs {
			i := 0
			if cl.protoShared.Load() >= 3 {
				i = 1
			}
			if enc[i] == nil {
				w := resp.Writer{Proto: 2 + i}
				w.Push(3)
				w.BulkString("message")
				w.Bulk(channel)
				w.Bulk(msg)
				enc[i] = w.B
			}
			cl.deliver(enc[i])
			n++
		}
	}
	for pat, subs := range h.patterns {
		if !glob.Match(pat, string(channel)) {
			continue
		}
		var penc [2][]byte
		for cl := range subs {
			i := 0
			if cl.protoShared.Load() >= 3 {
				i = 1
			}
			if penc[i] == nil {
				w := resp.Writer{Proto: 2 + i}
				w.Push(4)
				w.BulkString("pmessage")
				w.BulkString(pat)
				w.Bulk(channel)
				w.Bulk(msg)
				penc[i] = w.B
			}
			cl.deliver(penc[i])
			n++
		}
	}
	return n
}

func cmdPublish(c *Ctx) {
	c.w.Int(int64(c.srv.hub.publish(c.args[1], c.args[2])))
}

func cmdPubsub(c *Ctx) {
	h := c.srv.hub
	sub := strings.ToLower(string(c.args[1]))
	switch {
	case sub == "channels" && len(c.args) <= 3:
		pat := "*"
		if len(c.args) == 3 {
			pat = string(c.args[2])
		}
		h.mu.RLock()
		var out []string
		for n := range h.channels {
			if glob.Match(pat, n) {
				out = append(out, n)
			}
		}
		h.mu.RUnlock()
		sort.Strings(out)
		c.w.Array(len(out))
		for _, n := range out {
			c.w.BulkString(n)
		}
	case sub == "numsub":
		c.w.Map(len(c.args) - 2)
		h.mu.RLock()
		for _, a := range c.args[2:] {
			c.w.Bulk(a)
			c.w.Int(int64(len(h.channels[string(a)])))
		}
		h.mu.RUnlock()
	case sub == "numpat" && len(c.args) == 2:
		h.mu.RLock()
		n := len(h.patterns)
		h.mu.RUnlock()
		c.w.Int(int64(n))
	case sub == "help":
		helpReply(c.w, "PUBSUB", []string{
			"CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
			"NUMPAT", "    Return number of subscriptions to patterns.",
			"NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
			"    pattern subscriptions(default: no channels).",
		})
	default:
		unknownSubcommand(c)
	}
}

func unknownSubcommand(c *Ctx) {
	c.w.Error("ERR unknown subcommand '" + string(c.args[1]) + "'. Try " + strings.ToUpper(c.spec.Name) + " HELP.")
}

func helpReply(w *resp.Writer, cmd string, lines []string) {
	w.Array(len(lines) + 3)
	w.Simple(cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		w.Simple(l)
	}
	w.Simple("HELP")
	w.Simple("    Print this help.")
}
