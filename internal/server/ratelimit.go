package server

import (
	"errors"
	"sync"
	"time"
)

// tokenBucket bounds the bytes per second a node sends for slot moves
// (migrate-max-bytes-per-sec), shared by all its outgoing moves. A
// sender reserves each piece before writing it and waits the time
// reserve returns: the bucket may go into debt by one piece, so a piece
// larger than the burst waits in proportion instead of never fitting.
// The clock is injected, so tests check the bound without sleeping.
type tokenBucket struct {
	mu      sync.Mutex
	rate    int64 // bytes per second; 0: unlimited
	tokens  float64
	last    time.Time
	now     func() time.Time
	granted int64 // bytes reserved so far (tests, INFO)
	// changed is closed (and replaced) by a change of rate: a sender
	// waiting for its piece computes its wait again (CONFIG SET of a
	// higher limit, or none, applies at once, not after the old wait).
	changed chan struct{}
}

// burst is what an idle bucket holds: an eighth of a second of rate, at
// least 64 KiB (one piece).
func (b *tokenBucket) burstLocked() float64 { return float64(max(b.rate/8, 64<<10)) }

// clock is the bucket's time (now, when set: tests).
func (b *tokenBucket) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// refillLocked adds the tokens earned at the current rate since the
// last refill, up to the burst.
func (b *tokenBucket) refillLocked(now time.Time) {
	if b.rate > 0 && !b.last.IsZero() {
		b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*float64(b.rate), b.burstLocked())
	}
	b.last = now
}

// setRate changes the rate (CONFIG SET); the tokens held are capped.
// What was earned until now counts at the old rate.
func (b *tokenBucket) setRate(rate int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rate == b.rate {
		return
	}
	if !b.last.IsZero() { // else the first reserve starts with the burst
		b.refillLocked(b.clock())
	}
	b.rate = rate
	b.tokens = min(b.tokens, b.burstLocked())
	if rate <= 0 {
		b.tokens = 0 // unlimited: no debt left to pay
	}
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// changedChan returns the channel closed at the next change of rate.
func (b *tokenBucket) changedChan() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// owed is how long the bucket's debt, less what it earned since, takes
// to pay at the current rate: a waiting sender's wait after a change of
// rate.
func (b *tokenBucket) owed() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 {
		return 0
	}
	b.refillLocked(b.clock())
	return b.debtLocked()
}

// errLimiterQuit: the server closed while a sender waited.
var errLimiterQuit = errors.New("server closing")

// wait sleeps d, the wait reserve returned for a piece; changed is
// changedChan from before the reserve. A change of rate meanwhile makes
// it wait what the debt takes at the new rate instead.
func (b *tokenBucket) wait(d time.Duration, changed <-chan struct{}, quit <-chan struct{}) error {
	for d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
			return nil
		case <-quit:
			t.Stop()
			return errLimiterQuit
		case <-changed:
			t.Stop()
			changed = b.changedChan()
			d = b.owed()
		}
	}
	return nil
}

// reserve takes n bytes and returns how long to wait before sending them.
func (b *tokenBucket) reserve(n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.granted += int64(n)
	if b.rate <= 0 {
		return 0
	}
	if b.last.IsZero() {
		b.tokens = b.burstLocked()
	}
	b.refillLocked(b.clock())
	b.tokens -= float64(n)
	return b.debtLocked()
}

// debtLocked is how long the bucket's debt (negative tokens) takes to pay
// at the current rate (> 0); 0 without debt.
func (b *tokenBucket) debtLocked() time.Duration {
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / float64(b.rate) * float64(time.Second))
}

// Granted returns the bytes reserved so far.
func (b *tokenBucket) Granted() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.granted
}
