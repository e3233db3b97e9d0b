package engine

import (
	"math/rand/v2"

	"shoal/internal/cluster"
)

// OverLimit reports whether maxmemory is set and exceeded.
func (db *DB) OverLimit() bool {
	max := db.maxmemory.Load()
	return max > 0 && db.used.Load() > max
}

// Evict deletes keys chosen by the maxmemory policy until the accounted
// memory is within maxmemory. It returns false when it cannot get there
// (noeviction, or no key qualifies), in which case the write that asked
// must be refused with OOM. Like Redis it is a sampled approximation: each
// round looks at maxmemory-samples keys and evicts the best candidate.
// Call it with no slot locked.
func (db *DB) Evict() bool {
	max := db.maxmemory.Load()
	if max == 0 {
		return true
	}
	pol := int(db.policy.Load())
	for rounds := 0; db.used.Load() > max; rounds++ {
		if pol == PolicyNoEviction || rounds > 100000 {
			return false
		}
		if !db.evictOne(pol) {
			return false
		}
	}
	return true
}

func volatilePolicy(p int) bool {
	return p == PolicyVolatileLRU || p == PolicyVolatileLFU || p == PolicyVolatileTTL || p == PolicyVolatileRandom
}

type candidate struct {
	slot  int
	key   string
	score int64 // higher = better to evict
}

func (db *DB) evictOne(pol int) bool {
	vol := volatilePolicy(pol)
	if vol && db.nvol.Load() == 0 {
		return false
	}
	if !vol && db.nkeys.Load() == 0 {
		return false
	}
	samples := int(db.samples.Load())
	if samples <= 0 {
		samples = 5
	}
	now := db.Now()
	best := candidate{slot: -1}
	found := 0
	// Probe random slots; with few keys most slots are empty, so after a
	// number of misses fall back to a scan of every slot from a random
	// start (the scan must cover all of them: a lone candidate in any slot
	// is found).
	const randomProbes = 64
	start := rand.IntN(cluster.NumSlots)
	for probe := 0; probe < randomProbes+cluster.NumSlots && found < samples; probe++ {
		var i int
		if probe < randomProbes {
			i = rand.IntN(cluster.NumSlots)
		} else {
			i = (start + probe - randomProbes) % cluster.NumSlots
		}
		s := &db.slots[i]
		s.mu.Lock()
		var src map[string]struct{}
		if vol {
			src = s.volatile
			if len(src) == 0 {
				s.mu.Unlock()
				continue
			}
		} else if s.tab.len() == 0 {
			s.mu.Unlock()
			continue
		}
		taken := 0
		consider := func(k string, e *Entry) {
			taken++
			found++
			var sc int64
			switch pol {
			case PolicyAllKeysLRU, PolicyVolatileLRU:
				sc = int64(db.lruClock(now)) - int64(e.Access)
			case PolicyAllKeysLFU, PolicyVolatileLFU:
				db.lfuDecr(e, now)
				sc = 255 - int64(e.Freq)
			case PolicyVolatileTTL:
				sc = -e.ExpireAt
			default:
				sc = rand.Int64()
			}
			if best.slot < 0 || sc > best.score {
				best = candidate{slot: i, key: k, score: sc}
			}
		}
		if vol {
			for k := range src {
				if e := s.tab.getStr(k); e != nil {
					consider(k, e)
				}
				if taken >= 3 {
					break
				}
			}
		} else {
			s.tab.eachFromRandom(func(e *Entry) bool {
				consider(e.Key(), e)
				return taken < 3
			})
		}
		s.mu.Unlock()
	}
	if best.slot < 0 {
		return false
	}
	s := &db.slots[best.slot]
	s.mu.Lock()
	if e := s.tab.getStr(best.key); e != nil {
		db.remove(s, e)
		db.Stats.Evicted.Add(1)
		if db.hooks.KeyDeleted != nil {
			db.hooks.KeyDeleted(s, best.key)
		}
		if db.hooks.KeyDropped != nil {
			db.hooks.KeyDropped(s, best.key)
		}
	}
	s.mu.Unlock()
	return true
}
