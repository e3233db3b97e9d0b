package engine

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
)

// Eviction policies (maxmemory-policy).
const (
	PolicyNoEviction = iota
	PolicyAllKeysLRU
	PolicyAllKeysLFU
	PolicyVolatileLRU
	PolicyVolatileLFU
	PolicyVolatileTTL
	PolicyAllKeysRandom
	PolicyVolatileRandom
)

// PolicyNames maps maxmemory-policy values to constants.
var PolicyNames = map[string]int{
	"noeviction": PolicyNoEviction, "allkeys-lru": PolicyAllKeysLRU, "allkeys-lfu": PolicyAllKeysLFU,
	"volatile-lru": PolicyVolatileLRU, "volatile-lfu": PolicyVolatileLFU, "volatile-ttl": PolicyVolatileTTL,
	"allkeys-random": PolicyAllKeysRandom, "volatile-random": PolicyVolatileRandom,
}

// Slot is one slot's table. Its fields are guarded by mu.
//
// The fields a lookup touches (the lock, the table, the counters) come
// first, in the slot's first cache line.
type Slot struct {
	mu     sync.Mutex
	tab    table
	casSeq uint64
	// hits and misses are per slot, under the slot lock, so the hot path
	// never contends on a shared counter; INFO sums them.
	hits, misses int64
	// Ops counts the commands run on the slot: the server adds under the
	// slot lock (the line is already this core's: no contention), the
	// cluster agent reads it without the lock (a heartbeat must not wait
	// for 16384 slot locks, some held by slot imports).
	Ops atomic.Uint64

	volatile map[string]struct{} // keys with an expiry, for active expiry and volatile-* eviction
	mem      int64

	// Watchers and Waiters are owned by the server: WATCHed keys and
	// clients blocked on keys (BLPOP...). The engine only clears them
	// through the Hooks.
	Watchers map[string][]any
	Waiters  map[string][]any

	// NoTouch is set by the server while a CLIENT NO-TOUCH client's
	// command holds the slot: reads then leave LRU/LFU metadata alone.
	NoTouch bool

	// LSN is the sequence number of the last log record that changed
	// the slot (set by the server under the lock; a snapshot's mark).
	LSN uint64

	// NoExpire is set by a replica while it applies its primary's
	// records to the slot: keys past their expiry are still live for
	// them (the primary's DEL comes in the stream).
	NoExpire bool
}

// Hooks let the server observe deletions the engine makes by itself
// (expiry, eviction), which WATCH must see as modifications.
type Hooks struct {
	// KeyDeleted is called with the slot lock held.
	KeyDeleted func(s *Slot, key string)
	// KeyDropped is called, with the slot lock held, when the engine
	// itself removes a key: it expired or was evicted (the log records
	// the delete). Not called by Flush or Delete.
	KeyDropped func(s *Slot, key string)
}

// Stats are the keyspace counters INFO reports.
type Stats struct {
	Hits, Misses, Expired, Evicted atomic.Int64
	ExpiredStalePerc               atomic.Int64
}

// DB is the keyspace.
type DB struct {
	slots [cluster.NumSlots]Slot

	used    atomic.Int64 // accounted bytes
	nkeys   atomic.Int64
	nvol    atomic.Int64
	Stats   Stats
	hooks   Hooks
	start   time.Time
	startMs int64        // start in unix ms, for the LRU clock
	clockMs atomic.Int64 // cached unix ms, refreshed by the server per batch and by the cron
	frozen  atomic.Bool  // FreezeClock
	keepExp atomic.Bool  // SetReplicaMode

	maxmemory atomic.Int64
	policy    atomic.Int32
	samples   atomic.Int32
	lfuLog    atomic.Int32
	lfuDecay  atomic.Int32

	expiryCursor int // owned by the active-expiry goroutine
}

// New returns an empty keyspace.
func New(h Hooks) *DB {
	db := &DB{hooks: h, start: time.Now()}
	db.startMs = db.start.UnixMilli()
	db.samples.Store(5)
	db.lfuLog.Store(10)
	db.lfuDecay.Store(1)
	db.Tick()
	return db
}

// SetMaxMemory sets the limit in bytes (0 = none) and the policy.
func (db *DB) SetMaxMemory(bytes int64, policy int, samples int) {
	db.maxmemory.Store(bytes)
	db.policy.Store(int32(policy))
	if samples > 0 {
		db.samples.Store(int32(samples))
	}
}

// SetLFU sets lfu-log-factor and lfu-decay-time.
func (db *DB) SetLFU(logFactor, decayMinutes int) {
	db.lfuLog.Store(int32(logFactor))
	db.lfuDecay.Store(int32(decayMinutes))
}

func (db *DB) MaxMemory() int64 { return db.maxmemory.Load() }
func (db *DB) Policy() int      { return int(db.policy.Load()) }

// Tick refreshes the cached clock; call it at least once per read batch.
func (db *DB) Tick() int64 {
	if db.frozen.Load() {
		return db.clockMs.Load()
	}
	now := time.Now().UnixMilli()
	// Store only on change: every loop ticks per batch, and a store on
	// every tick would bounce the line between cores (readers are hot).
	if db.clockMs.Load() != now {
		db.clockMs.Store(now)
	}
	return now
}

// FreezeClock stops (true) or restarts (false) the clock. While it is
// stopped the time is 0, so no key expires: log replay applies effects to
// keys exactly as they were when the effects were logged (the deletes of
// expired keys are in the log).
func (db *DB) FreezeClock(on bool) {
	db.frozen.Store(on)
	if on {
		db.clockMs.Store(0)
	} else {
		db.clockMs.Store(time.Now().UnixMilli())
	}
}

// SetReplicaMode makes lookups report keys past their expiry as missing
// without deleting them (on a replica the primary's stream deletes them;
// a replica's own delete would diverge from the stream).
func (db *DB) SetReplicaMode(on bool) { db.keepExp.Store(on) }

// ReplicaMode reports SetReplicaMode.
func (db *DB) ReplicaMode() bool { return db.keepExp.Load() }

// gone reports whether e (key k of s) must be treated as missing at now:
// past its expiry, it is deleted, unless the slot is being applied from
// a primary's stream (live) or the node is a replica (missing, kept).
func (db *DB) gone(s *Slot, e *Entry, now int64) bool {
	if !expired(e, now) || s.NoExpire {
		return false
	}
	if db.keepExp.Load() {
		return true
	}
	db.expireKey(s, e)
	return true
}

// Now is the cached unix time in ms.
func (db *DB) Now() int64 { return db.clockMs.Load() }

// UsedMemory is the accounted dataset size in bytes.
func (db *DB) UsedMemory() int64 { return db.used.Load() }

// KeyCount is the number of keys, including expired ones not yet reclaimed.
func (db *DB) KeyCount() int64 { return db.nkeys.Load() }

// VolatileCount is the number of keys with an expiry.
func (db *DB) VolatileCount() int64 { return db.nvol.Load() }

// Slot returns slot i's table (lock it before use).
func (db *DB) Slot(i int) *Slot { return &db.slots[i] }

func (db *DB) Lock(i int)   { db.slots[i].mu.Lock() }
func (db *DB) Unlock(i int) { db.slots[i].mu.Unlock() }

// LockSlots locks the given slots, which must be sorted and distinct.
func (db *DB) LockSlots(ids []int) {
	for _, i := range ids {
		db.slots[i].mu.Lock()
	}
}

// UnlockSlots unlocks what LockSlots locked.
func (db *DB) UnlockSlots(ids []int) {
	for j := len(ids) - 1; j >= 0; j-- {
		db.slots[ids[j]].mu.Unlock()
	}
}

// LockAll locks every slot (FLUSHALL inside EXEC, whole-keyspace commands
// in a transaction). Slots are locked in ascending order like any other set.
func (db *DB) LockAll() {
	for i := range db.slots {
		db.slots[i].mu.Lock()
	}
}

func (db *DB) UnlockAll() {
	for i := len(db.slots) - 1; i >= 0; i-- {
		db.slots[i].mu.Unlock()
	}
}

// Reserve makes room for n keys in an empty slot (snapshot load: a map
// grown key by key rehashes about log2(n) times).
func (db *DB) Reserve(s *Slot, n int) {
	s.tab.reserve(n)
}

// Len is the number of keys in the slot (expired ones included).
func (s *Slot) Len() int { return s.tab.len() }

func (db *DB) lruClock(now int64) uint32 { return uint32((now - db.startMs) / 1000) }

// touchAccess updates LRU/LFU metadata on access.
func (db *DB) touchAccess(e *Entry, now int64) {
	p := db.policy.Load()
	if p == PolicyAllKeysLFU || p == PolicyVolatileLFU {
		db.lfuDecr(e, now)
		e.Freq = lfuIncr(e.Freq, int(db.lfuLog.Load()))
		e.Access = uint32(now / 60000)
		return
	}
	e.Access = db.lruClock(now)
}

const lfuInitVal = 5

func lfuIncr(c uint8, logFactor int) uint8 {
	if c == 255 {
		return 255
	}
	r := rand.Float64()
	base := float64(int(c) - lfuInitVal)
	if base < 0 {
		base = 0
	}
	if r < 1.0/(base*float64(logFactor)+1) {
		return c + 1
	}
	return c
}

func (db *DB) lfuDecr(e *Entry, now int64) {
	decay := int64(db.lfuDecay.Load())
	if decay <= 0 {
		return
	}
	mins := now/60000 - int64(e.Access)
	if mins <= 0 {
		return
	}
	periods := mins / decay
	if periods >= int64(e.Freq) {
		e.Freq = 0
	} else {
		e.Freq -= uint8(periods)
	}
}

// expired reports whether e is past its expiry at now.
func expired(e *Entry, now int64) bool { return e.ExpireAt != 0 && e.ExpireAt <= now }

// Peek returns the live entry for key without touching access metadata or
// hit counters, deleting it if it has expired.
func (db *DB) Peek(s *Slot, key []byte) *Entry {
	e := s.tab.get(key)
	if e == nil {
		return nil
	}
	if db.gone(s, e, db.Now()) {
		return nil
	}
	return e
}

// Lookup returns the live entry for a read, counting a hit or a miss and
// updating LRU/LFU metadata.
func (db *DB) Lookup(s *Slot, key []byte) *Entry {
	e := s.tab.get(key)
	if e == nil {
		s.misses++
		return nil
	}
	now := db.Now()
	if db.gone(s, e, now) {
		s.misses++
		return nil
	}
	s.hits++
	if !s.NoTouch {
		db.touchAccess(e, now)
	}
	return e
}

// LookupWrite returns the live entry for a write: it bumps the CAS and the
// access metadata. Callers that change the value's size call Resized.
func (db *DB) LookupWrite(s *Slot, key []byte) *Entry {
	e := s.tab.get(key)
	if e == nil {
		return nil
	}
	now := db.Now()
	if db.gone(s, e, now) {
		return nil
	}
	s.casSeq++
	e.CAS = s.casSeq
	db.touchAccess(e, now)
	return e
}

// Resized accounts a change of e's value size from old to e.MemSize().
func (db *DB) Resized(s *Slot, old int64, e *Entry) {
	d := e.MemSize() - old
	if d != 0 {
		s.mem += d
		db.used.Add(d)
	}
}

// Add stores a new entry for a key that must not exist (check with Peek or
// LookupWrite first). The key is copied. It returns the stored entry:
// e itself when e was made for key by NewEntry, otherwise a copy of e
// allocated with the key (e must not be used afterwards).
func (db *DB) Add(s *Slot, key []byte, e *Entry) *Entry {
	if e.keyKind == keyNone || e.Key() != string(key) {
		ne := newEntry(key)
		kk, kl := ne.keyKind, ne.klen
		*ne = *e
		ne.keyKind, ne.klen = kk, kl
		*e = Entry{} // a stale use of e fails fast instead of aliasing ne's value
		e = ne
	}
	k := e.Key()
	s.tab.put(e)
	s.casSeq++
	e.CAS = s.casSeq
	db.touchAccess(e, db.Now())
	if db.policy.Load() == PolicyAllKeysLFU || db.policy.Load() == PolicyVolatileLFU {
		e.Freq = lfuInitVal
	}
	if e.ExpireAt != 0 {
		db.addVolatile(s, k)
	}
	d := KeyCost(len(k)) + e.MemSize()
	s.mem += d
	db.used.Add(d)
	db.nkeys.Add(1)
	return e
}

// SetString stores v (copied) as the string value of key, replacing any
// value of any type. keepTTL keeps an existing expiry; otherwise expireAt
// (0 = none) is set. It reuses the old entry and buffer where it can.
func (db *DB) SetString(s *Slot, key, v []byte, expireAt int64, keepTTL bool) *Entry {
	e := s.tab.get(key)
	if e != nil && expired(e, db.Now()) && !s.NoExpire {
		db.expireKey(s, e)
		e = nil
	}
	if e == nil {
		ne := newEntry(key)
		ne.Type, ne.ExpireAt = TypeString, expireAt
		ne.SetBytes(append([]byte(nil), v...)) // append rounds cap up to the allocation's size class
		return db.Add(s, key, ne)
	}
	old := e.MemSize()
	if e.Type == TypeString && cap(e.Bytes()) >= len(v) && cap(e.Bytes()) <= 2*len(v)+16 {
		e.SetBytes(append(e.Bytes()[:0], v...))
	} else {
		e.SetBytes(append([]byte(nil), v...))
	}
	e.Type = TypeString
	e.Obj = nil
	e.Flags = 0
	e.MC = 0
	if !keepTTL {
		db.SetExpire(s, key, e, expireAt)
	}
	s.casSeq++
	e.CAS = s.casSeq
	db.touchAccess(e, db.Now())
	db.Resized(s, old, e)
	return e
}

// SetStringOwned is SetString for a value buffer the caller hands over
// (it must not be used afterwards): large values are stored without a
// copy. It is built on SetString with an empty value so that SetString's
// value never escapes (callers pass it stack buffers).
func (db *DB) SetStringOwned(s *Slot, key, v []byte, expireAt int64, keepTTL bool) *Entry {
	e := db.SetString(s, key, nil, expireAt, keepTTL)
	old := e.MemSize()
	e.SetBytes(v)
	db.Resized(s, old, e)
	return e
}

// SetExpire sets (or with 0 clears) e's absolute expiry.
func (db *DB) SetExpire(s *Slot, key []byte, e *Entry, at int64) {
	if (e.ExpireAt != 0) == (at != 0) {
		e.ExpireAt = at
		return
	}
	e.ExpireAt = at
	if at != 0 {
		db.addVolatile(s, e.Key())
	} else {
		delete(s.volatile, e.Key())
		db.nvol.Add(-1)
	}
}

func (db *DB) addVolatile(s *Slot, k string) {
	if s.volatile == nil {
		s.volatile = make(map[string]struct{})
	}
	s.volatile[k] = struct{}{}
	db.nvol.Add(1)
}

// Delete removes key and reports whether a live key was removed.
func (db *DB) Delete(s *Slot, key []byte) bool {
	e := s.tab.get(key)
	if e == nil {
		return false
	}
	if expired(e, db.Now()) && !s.NoExpire {
		db.expireKey(s, e)
		return false
	}
	db.remove(s, e)
	return true
}

func (db *DB) remove(s *Slot, e *Entry) {
	k := e.Key()
	s.tab.del(e)
	if e.ExpireAt != 0 {
		delete(s.volatile, k)
		db.nvol.Add(-1)
	}
	d := KeyCost(len(k)) + e.MemSize()
	s.mem -= d
	db.used.Add(-d)
	db.nkeys.Add(-1)
}

func (db *DB) expireKey(s *Slot, e *Entry) {
	k := e.Key()
	db.remove(s, e)
	db.Stats.Expired.Add(1)
	if db.hooks.KeyDeleted != nil {
		db.hooks.KeyDeleted(s, k)
	}
	if db.hooks.KeyDropped != nil {
		db.hooks.KeyDropped(s, k)
	}
}

// Rename moves src's entry to dst in possibly another slot (both locked);
// dst's old value, if any, is dropped.
func (db *DB) Rename(ss *Slot, src []byte, ds *Slot, dst []byte) {
	e := ss.tab.get(src)
	db.remove(ss, e)
	if old := ds.tab.get(dst); old != nil {
		db.remove(ds, old)
	}
	exp := e.ExpireAt
	e.ExpireAt = 0
	e = db.Add(ds, dst, e)
	if exp != 0 {
		db.SetExpire(ds, dst, e, exp)
	}
}

// ForEach calls fn for every live key of the slot (the slot locked).
// fn must not add or delete keys.
func (db *DB) ForEach(s *Slot, fn func(key string, e *Entry) bool) {
	now := db.Now()
	s.tab.each(func(e *Entry) bool {
		if expired(e, now) && !s.NoExpire {
			return true
		}
		return fn(e.Key(), e)
	})
}

// ForEachHeld is ForEach including keys past their expiry not yet deleted.
func (db *DB) ForEachHeld(s *Slot, fn func(key string, e *Entry) bool) {
	s.tab.each(func(e *Entry) bool { return fn(e.Key(), e) })
}

// Flush deletes every key of the slot; it calls the KeyDeleted hook only
// for watched keys.
func (db *DB) Flush(s *Slot) {
	if s.tab.len() == 0 {
		return
	}
	db.used.Add(-s.mem)
	db.nkeys.Add(-int64(s.tab.len()))
	db.nvol.Add(-int64(len(s.volatile)))
	if len(s.Watchers) > 0 && db.hooks.KeyDeleted != nil {
		for k := range s.Watchers {
			if s.tab.getStr(k) != nil {
				db.hooks.KeyDeleted(s, k)
			}
		}
	}
	s.tab.clear()
	s.volatile = nil
	s.mem = 0
}

// RandomKey returns a random live key of the slot, or "".
func (db *DB) RandomKey(s *Slot) (string, bool) {
	now := db.Now()
	key, ok := "", false
	s.tab.eachFromRandom(func(e *Entry) bool {
		if !expired(e, now) {
			key, ok = e.Key(), true
			return false
		}
		return true
	})
	return key, ok
}

// LRUClock is the current LRU clock (seconds since start), as stored in
// Entry.Access under LRU policies.
func (db *DB) LRUClock() uint32 { return db.lruClock(db.Now()) }

// HitsMisses sums keyspace_hits and keyspace_misses over all slots.
func (db *DB) HitsMisses() (hits, misses int64) {
	for i := range db.slots {
		s := &db.slots[i]
		s.mu.Lock()
		hits += s.hits
		misses += s.misses
		s.mu.Unlock()
	}
	return
}

// ResetStats clears the keyspace counters (CONFIG RESETSTAT).
func (db *DB) ResetStats() {
	for i := range db.slots {
		s := &db.slots[i]
		s.mu.Lock()
		s.hits, s.misses = 0, 0
		s.mu.Unlock()
	}
	db.Stats.Expired.Store(0)
	db.Stats.Evicted.Store(0)
}
