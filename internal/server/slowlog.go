package server

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

type slowEntry struct {
	id     int64
	at     int64 // unix seconds
	micros int64
	args   []string
	addr   string
	name   string
}

// slowlog keeps the last slowlog-max-len slow commands.
type slowlog struct {
	mu      sync.Mutex
	entries []slowEntry // newest last
	nextID  int64
}

const (
	slowlogMaxArgs   = 32
	slowlogMaxArgLen = 128
)

func (l *slowlog) add(cl *Client, args [][]byte, d time.Duration, max int) {
	if max <= 0 {
		return
	}
	e := slowEntry{at: time.Now().Unix(), micros: d.Microseconds(), addr: cl.addr}
	if n := cl.name.Load(); n != nil {
		e.name = *n
	}
	for i, a := range args {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			e.args = append(e.args, "... ("+strconv.Itoa(len(args)-i)+" more arguments)")
			break
		}
		if len(a) > slowlogMaxArgLen {
			e.args = append(e.args, string(a[:slowlogMaxArgLen])+"... ("+strconv.Itoa(len(a)-slowlogMaxArgLen)+" more bytes)")
		} else {
			e.args = append(e.args, string(a))
		}
	}
	l.mu.Lock()
	e.id = l.nextID
	l.nextID++
	l.entries = append(l.entries, e)
	if len(l.entries) > max {
		l.entries = append(l.entries[:0], l.entries[len(l.entries)-max:]...)
	}
	l.mu.Unlock()
}

func init() { register("slowlog", cmdSlowlog) }

func cmdSlowlog(c *Ctx) {
	l := c.srv.slow
	switch strings.ToLower(string(c.args[1])) {
	case "get":
		if len(c.args) > 3 {
			c.w.Error(errArity("slowlog|get"))
			return
		}
		n := 10
		if len(c.args) == 3 {
			v, err := strconv.Atoi(string(c.args[2]))
			if err != nil || v < -1 {
				c.w.Error("ERR count should be greater than or equal to -1")
				return
			}
			n = v
		}
		l.mu.Lock()
		es := l.entries
		if n == -1 || n > len(es) {
			n = len(es)
		}
		c.w.Array(n)
		for i := 0; i < n; i++ {
			e := es[len(es)-1-i]
			c.w.Array(6)
			c.w.Int(e.id)
			c.w.Int(e.at)
			c.w.Int(e.micros)
			c.w.Array(len(e.args))
			for _, a := range e.args {
				c.w.BulkString(a)
			}
			c.w.BulkString(e.addr)
			c.w.BulkString(e.name)
		}
		l.mu.Unlock()
	case "len":
		l.mu.Lock()
		c.w.Int(int64(len(l.entries)))
		l.mu.Unlock()
	case "reset":
		l.mu.Lock()
		l.entries = nil
		l.mu.Unlock()
		c.w.OK()
	case "help":
		helpReply(c.w, "SLOWLOG", []string{
			"GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"LEN", "    Return the length of the slowlog.",
			"RESET", "    Reset the slowlog.",
		})
	default:
		unknownSubcommand(c)
	}
}
