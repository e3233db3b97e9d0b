package server

// The memcached meta commands (mg ms md ma me), on the same items as the
// text commands. Item state for stale-while-revalidate lives in Entry.MC.

import (
	"strconv"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/memcache"
)

// mcMetaKeyFlags appends the O, k (and b) return flags, which every meta
// reply carries when asked, hit or miss.
func mcMetaKeyFlags(b []byte, cmd *memcache.Command) []byte {
	for _, t := range cmd.Meta.Tokens {
		switch t[0] {
		case 'O':
			b = memcache.AppendFlag(b, 'O', cmd.Meta.Opaque)
		case 'k':
			b = memcache.AppendFlag(b, 'k', cmd.RawKey)
			if cmd.Meta.Flag('b') {
				b = append(b, " b"...)
			}
		}
	}
	return b
}

// mcMetaStatus writes a bare status reply ("NF", "EX"...) with O/k flags.
func mcMetaStatus(cl *Client, cmd *memcache.Command, status string) {
	cl.w.B = mcMetaKeyFlags(append(cl.w.B, status...), cmd)
	cl.w.B = append(cl.w.B, '\r', '\n')
}

// mcMetaItemFlags appends the return flags describing item e, in request
// order (c f h k l O s t; b after k).
func (s *Server) mcMetaItemFlags(b []byte, cmd *memcache.Command, e *engine.Entry, fetched bool, idle int64) []byte {
	m := &cmd.Meta
	now := s.db.Now()
	for _, t := range m.Tokens {
		switch t[0] {
		case 'c':
			b = memcache.AppendFlagUint(b, 'c', e.CAS)
		case 'f':
			b = memcache.AppendFlagUint(b, 'f', uint64(e.Flags))
		case 'h':
			b = append(b, " h"...)
			b = append(b, pick(fetched, "1", "0")...)
		case 'k':
			b = memcache.AppendFlag(b, 'k', cmd.RawKey)
			if m.Flag('b') {
				b = append(b, " b"...)
			}
		case 'l':
			b = memcache.AppendFlagInt(b, 'l', idle)
		case 'O':
			b = memcache.AppendFlag(b, 'O', m.Opaque)
		case 's':
			b = memcache.AppendFlagInt(b, 's', int64(len(e.Bytes())))
		case 't':
			b = memcache.AppendFlagInt(b, 't', mcTTL(e, now))
		}
	}
	return b
}

// mcIdle is the seconds since e was last accessed (LRU policies keep a
// seconds clock in Access; LFU ones minutes).
func (s *Server) mcIdle(e *engine.Entry) int64 {
	switch s.db.Policy() {
	case engine.PolicyAllKeysLFU, engine.PolicyVolatileLFU:
		return max(0, s.db.Now()/1000-int64(e.Access)*60)
	}
	return max(0, int64(s.db.LRUClock())-int64(e.Access))
}

func (s *Server) mcMetaGet(cl *Client, cmd *memcache.Command) {
	m := &cmd.Meta
	st := &cl.shard.mc
	// Eviction locks other slots: decide before taking this one.
	admit := m.Flag('N') && s.mcAdmit()
	i, sl := s.mcSlot(cmd.Key)
	defer s.db.Unlock(i)
	var idle int64
	if m.Flag('l') {
		if e := s.db.Peek(sl, cmd.Key); e != nil {
			idle = s.mcIdle(e)
		}
	}
	var e *engine.Entry
	if m.Flag('u') {
		e = s.db.Peek(sl, cmd.Key)
	} else {
		e = s.db.Lookup(sl, cmd.Key)
	}
	if !isString(e) {
		e = nil
	}
	fresh := false // created just now by N (vivify)
	if e == nil && m.Flag('N') {
		if at, gone := mcExpireAt(s.db.Now(), m.Vivify); !gone && admit {
			e = s.db.SetString(sl, cmd.Key, nil, at, false)
			e.MC = mcTokenSent
			fresh = true
			s.mcWrote(sl, cmd.Key)
		}
	}
	st[mcCmdGet].Add(1)
	if e == nil {
		st[mcGetMisses].Add(1)
		if !cmd.NoReply {
			mcMetaStatus(cl, cmd, "EN")
		}
		return
	}
	st[mcGetHits].Add(1)
	fetched := e.MC&mcFetched != 0
	sent := !fresh && e.MC&mcTokenSent != 0
	stale := e.MC&mcStale != 0
	won := fresh
	if !fresh && !sent {
		if stale || (m.Flag('R') && e.ExpireAt != 0 && mcTTL(e, s.db.Now()) < m.Recach) {
			won = true
			e.MC |= mcTokenSent
		}
	}
	// T touches before the reply (its t flag shows the new TTL); an
	// already-past TTL still serves this read, then removes the item.
	touchGone := false
	if m.Flag('T') {
		at, gone := mcExpireAt(s.db.Now(), m.TTL)
		if touchGone = gone; !gone {
			s.mcSetExpire(sl, cmd.Key, e, at, false)
		}
	}
	v := e.Bytes()
	b := cl.w.B
	if m.Flag('v') {
		b = append(b, "VA "...)
		b = strconv.AppendInt(b, int64(len(v)), 10)
	} else {
		b = append(b, "HD"...)
	}
	b = s.mcMetaItemFlags(b, cmd, e, fetched, idle)
	if sent {
		b = append(b, " Z"...)
	}
	if stale {
		b = append(b, " X"...)
	}
	if won {
		b = append(b, " W"...)
	}
	b = append(b, '\r', '\n')
	if m.Flag('v') {
		b = append(append(b, v...), '\r', '\n')
	}
	cl.w.B = b
	e.MC |= mcFetched
	if touchGone {
		s.mcSetExpire(sl, cmd.Key, e, 0, true)
	}
}

// mcSlot locks key's slot; the caller unlocks i.
func (s *Server) mcSlot(key []byte) (int, *engine.Slot) {
	i := cluster.Slot(key)
	s.db.Lock(i)
	sl := s.db.Slot(i)
	sl.Ops.Add(1)
	return i, sl
}

func (s *Server) mcMetaSet(cl *Client, cmd *memcache.Command) {
	m := &cmd.Meta
	st := &cl.shard.mc
	op := memcache.OpSet
	if m.Flag('M') {
		switch m.Mode {
		case 'S', 's':
		case 'E', 'e':
			op = memcache.OpAdd
		case 'A', 'a':
			op = memcache.OpAppend
		case 'P', 'p':
			op = memcache.OpPrepend
		case 'R', 'r':
			op = memcache.OpReplace
		default:
			cl.mcReply(memcache.ErrBadMSMode)
			return
		}
	}
	st[mcCmdSet].Add(1)
	if !s.mcAdmit() {
		cl.mcReply(memcache.ErrOOM)
		return
	}
	i, sl := s.mcSlot(cmd.Key)
	defer s.db.Unlock(i)
	var ttl int64
	if m.Flag('T') {
		ttl = m.TTL
	}
	if (op == memcache.OpAppend || op == memcache.OpPrepend) && m.Flag('N') && !isString(s.db.Peek(sl, cmd.Key)) {
		op, ttl = memcache.OpSet, m.Vivify // autovivify on miss
	}
	e, res := s.mcStoreLocked(sl, op, cmd.Key, cmd.Data, m.Flags, ttl, m.CASIn, m.Flag('C'), m.Flag('I'))
	if res == mcStored && e != nil {
		st[mcTotalItems].Add(1)
		if m.Flag('E') {
			e.CAS = m.CASNew
		}
		if op == memcache.OpAppend || op == memcache.OpPrepend {
			if m.Flag('T') {
				at, gone := mcExpireAt(s.db.Now(), m.TTL)
				s.mcSetExpire(sl, cmd.Key, e, at, gone)
			}
		}
	}
	if res == mcStored && cmd.NoReply {
		return
	}
	b := append(cl.w.B, [...]string{"HD", "NS", "EX", "NF"}[res]...)
	for _, t := range m.Tokens {
		switch t[0] {
		case 'c':
			if e != nil {
				b = memcache.AppendFlagUint(b, 'c', e.CAS)
			}
		case 'k':
			b = memcache.AppendFlag(b, 'k', cmd.RawKey)
			if m.Flag('b') {
				b = append(b, " b"...)
			}
		case 'O':
			b = memcache.AppendFlag(b, 'O', m.Opaque)
		}
	}
	cl.w.B = append(b, '\r', '\n')
}

func (s *Server) mcMetaDelete(cl *Client, cmd *memcache.Command) {
	m := &cmd.Meta
	st := &cl.shard.mc
	i, sl := s.mcSlot(cmd.Key)
	defer s.db.Unlock(i)
	e := s.db.Peek(sl, cmd.Key)
	if !isString(e) {
		st[mcDeleteMisses].Add(1)
		mcMetaStatus(cl, cmd, "NF")
		return
	}
	if m.Flag('C') && e.CAS != m.CASIn {
		mcMetaStatus(cl, cmd, "EX")
		return
	}
	st[mcDeleteHits].Add(1)
	switch {
	case m.Flag('I'):
		// Invalidate: keep the value, serve it stale until recached.
		e = s.db.LookupWrite(sl, cmd.Key)
		e.MC = e.MC&^mcTokenSent | mcStale
		if m.Flag('T') {
			at, gone := mcExpireAt(s.db.Now(), m.TTL)
			s.mcSetExpire(sl, cmd.Key, e, at, gone)
		}
	case m.Flag('x'):
		// Drop the value, keep the item (flags, ttl).
		flags := e.Flags
		e = s.db.SetString(sl, cmd.Key, nil, 0, true)
		e.Flags = flags
	default:
		s.db.Delete(sl, cmd.Key)
		e = nil
	}
	if e != nil && m.Flag('E') {
		e.CAS = m.CASNew
	}
	s.mcWrote(sl, cmd.Key)
	if !cmd.NoReply {
		mcMetaStatus(cl, cmd, "HD")
	}
}

func (s *Server) mcMetaArith(cl *Client, cmd *memcache.Command) {
	m := &cmd.Meta
	st := &cl.shard.mc
	incr := true
	if m.Flag('M') {
		switch m.Mode {
		case 'I', 'i', '+':
		case 'D', 'd', '-':
			incr = false
		default:
			cl.mcReply(memcache.ErrBadMAMode)
			return
		}
	}
	admit := !m.Flag('N') || s.mcAdmit() // before the slot lock: eviction locks slots
	i, sl := s.mcSlot(cmd.Key)
	defer s.db.Unlock(i)
	e := s.db.Peek(sl, cmd.Key)
	var v uint64
	if !isString(e) {
		if incr {
			st[mcIncrMisses].Add(1)
		} else {
			st[mcDecrMisses].Add(1)
		}
		if !m.Flag('N') {
			mcMetaStatus(cl, cmd, "NF")
			return
		}
		at, gone := mcExpireAt(s.db.Now(), m.Vivify)
		if gone {
			mcMetaStatus(cl, cmd, "NS")
			return
		}
		if !admit {
			cl.mcReply(memcache.ErrOOM)
			return
		}
		v = m.Init
		var tmp [20]byte
		e = s.db.SetString(sl, cmd.Key, strconv.AppendUint(tmp[:0], v, 10), at, false)
		s.mcWrote(sl, cmd.Key)
	} else {
		if m.Flag('C') && e.CAS != m.CASIn {
			mcMetaStatus(cl, cmd, "EX")
			return
		}
		var ok bool
		e, v, ok = s.mcArith(sl, cmd.Key, e, incr, m.Delta)
		if !ok {
			cl.mcReply(memcache.ErrNonNumeric)
			return
		}
		if incr {
			st[mcIncrHits].Add(1)
		} else {
			st[mcDecrHits].Add(1)
		}
		if m.Flag('T') {
			at, gone := mcExpireAt(s.db.Now(), m.TTL)
			s.mcSetExpire(sl, cmd.Key, e, at, gone)
		}
	}
	if m.Flag('E') {
		e.CAS = m.CASNew
	}
	if !m.Flag('v') && cmd.NoReply {
		return
	}
	b := cl.w.B
	var num [20]byte
	val := strconv.AppendUint(num[:0], v, 10)
	if m.Flag('v') {
		b = append(b, "VA "...)
		b = strconv.AppendInt(b, int64(len(val)), 10)
	} else {
		b = append(b, "HD"...)
	}
	now := s.db.Now()
	for _, t := range m.Tokens {
		switch t[0] {
		case 'c':
			b = memcache.AppendFlagUint(b, 'c', e.CAS)
		case 't':
			b = memcache.AppendFlagInt(b, 't', mcTTL(e, now))
		case 'k':
			b = memcache.AppendFlag(b, 'k', cmd.RawKey)
			if m.Flag('b') {
				b = append(b, " b"...)
			}
		case 'O':
			b = memcache.AppendFlag(b, 'O', m.Opaque)
		}
	}
	b = append(b, '\r', '\n')
	if m.Flag('v') {
		b = append(append(b, val...), '\r', '\n')
	}
	cl.w.B = b
}

// mcMetaDebug is me: a human-readable line about an item.
func (s *Server) mcMetaDebug(cl *Client, cmd *memcache.Command) {
	i, sl := s.mcSlot(cmd.Key)
	defer s.db.Unlock(i)
	e := s.db.Peek(sl, cmd.Key)
	if !isString(e) {
		cl.mcReply("EN")
		return
	}
	exp := int64(-1)
	if e.ExpireAt != 0 {
		exp = mcTTL(e, s.db.Now())
	}
	b := append(cl.w.B, "ME "...)
	b = append(b, cmd.RawKey...)
	b = append(b, " exp="...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, " la="...)
	b = strconv.AppendInt(b, s.mcIdle(e), 10)
	b = append(b, " cas="...)
	b = strconv.AppendUint(b, e.CAS, 10)
	b = append(b, " fetch="...)
	b = append(b, pick(e.MC&mcFetched != 0, "yes", "no")...)
	b = append(b, " cls=1 size="...)
	b = strconv.AppendInt(b, int64(len(cmd.Key)+len(e.Bytes())+48), 10)
	cl.w.B = append(b, '\r', '\n')
}
