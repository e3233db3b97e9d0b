package engine

import "time"

// ActiveExpireCycle samples keys with an expiry and deletes expired ones,
// slot by slot, for at most budget. Like Redis it keeps sampling a slot
// while more than a quarter of its samples were expired. It must be
// called from one goroutine only (it owns the cursor).
func (db *DB) ActiveExpireCycle(budget time.Duration) {
	if db.nvol.Load() == 0 {
		return
	}
	deadline := time.Now().Add(budget)
	const perSlot = 20
	for n := 0; n < len(db.slots); n++ {
		i := db.expiryCursor
		db.expiryCursor = (db.expiryCursor + 1) % len(db.slots)
		s := &db.slots[i]
		s.mu.Lock()
		for len(s.volatile) > 0 && !db.keepExp.Load() { // a replica never expires by itself
			now := db.Tick()
			sampled, gone := 0, 0
			for k := range s.volatile {
				if sampled == perSlot {
					break
				}
				sampled++
				if e := s.tab.getStr(k); e != nil && expired(e, now) {
					db.expireKey(s, e)
					gone++
				}
			}
			if gone*4 <= sampled {
				break
			}
		}
		s.mu.Unlock()
		if n%64 == 63 && time.Now().After(deadline) {
			return
		}
	}
}
