package server

import (
	"math/rand"
	"testing"
	"time"
)

// Three senders sharing a bucket on a fake clock (each waits what
// reserve says): the bytes sent by any time never exceed rate × elapsed
// + burst + one piece, and the senders are not slower than the rate
// allows.
func TestTokenBucketBound(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := start
	b := &tokenBucket{now: func() time.Time { return clock }}
	const rate = 1 << 20
	b.setRate(rate)
	rng := rand.New(rand.NewSource(1))
	ready := [3]time.Time{start, start, start} // when each sender may send next
	sent := int64(0)
	for i := 0; i < 5000; i++ {
		// The sender whose turn comes first sends next.
		s := 0
		for j := range ready {
			if ready[j].Before(ready[s]) {
				s = j
			}
		}
		clock = ready[s]
		n := 1 + rng.Intn(256<<10)
		wait := b.reserve(n)
		// The piece goes out at clock + wait.
		sent += int64(n)
		at := clock.Add(wait)
		elapsed := at.Sub(start).Seconds()
		if limit := rate*elapsed + float64(max(rate/8, 64<<10)) + float64(n); float64(sent) > limit {
			t.Fatalf("%d bytes sent after %.3fs: above %.0f", sent, elapsed, limit)
		}
		ready[s] = at
	}
	last := clock.Sub(start).Seconds()
	if float64(sent) < rate*last*0.95 {
		t.Fatalf("%d bytes in %.1fs: well below the rate", sent, last)
	}
	if b.Granted() != sent {
		t.Fatalf("granted %d, sent %d", b.Granted(), sent)
	}
	// Unlimited: no wait.
	b.setRate(0)
	if d := b.reserve(100 << 20); d != 0 {
		t.Fatalf("unlimited bucket waits %v", d)
	}
}

// A sender waiting for its piece goes at once when the limit is lifted,
// and waits what its debt takes at a new rate when it changes.
func TestTokenBucketRateChangeWakesSenders(t *testing.T) {
	b := &tokenBucket{}
	b.setRate(1)        // 1 byte/s
	b.reserve(64 << 10) // the burst
	changed := b.changedChan()
	d := b.reserve(64 << 10)
	if d < time.Hour {
		t.Fatalf("a piece over the burst at 1 byte/s waits %v", d)
	}
	done := make(chan error, 1)
	go func() { done <- b.wait(d, changed, nil) }()
	b.setRate(0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// At a new rate: the debt at that rate.
	b.setRate(1)
	b.reserve(64 << 10)
	b.reserve(64 << 10)
	b.setRate(1 << 30)
	if d := b.owed(); d <= 0 || d > time.Millisecond {
		t.Fatalf("64 KiB owed at 1 GiB/s: %v", d)
	}
	quit := make(chan struct{})
	close(quit)
	if err := b.wait(time.Hour, b.changedChan(), quit); err != errLimiterQuit {
		t.Fatalf("wait after quit: %v", err)
	}
}

// A sender that has waited part of its debt owes only the rest when the
// rate changes: the tokens earned until the change count at the old rate.
func TestTokenBucketOwedCountsTheWaitSoFar(t *testing.T) {
	clock := time.Unix(1000, 0)
	b := &tokenBucket{now: func() time.Time { return clock }}
	b.setRate(100_000) // burst: 64 KiB
	if d := b.reserve(64<<10 + 50_000); d != 500*time.Millisecond {
		t.Fatalf("50,000 bytes over the burst at 100,000/s wait %v", d)
	}
	clock = clock.Add(250 * time.Millisecond) // half of it waited
	if d := b.owed(); d != 250*time.Millisecond {
		t.Fatalf("owed after waiting half: %v, want 250ms", d)
	}
	b.setRate(200_000)
	if d := b.owed(); d != 125*time.Millisecond {
		t.Fatalf("owed at twice the rate: %v, want 125ms (25,000 bytes left)", d)
	}
	clock = clock.Add(200 * time.Millisecond)
	if d := b.owed(); d != 0 {
		t.Fatalf("owed once paid: %v", d)
	}
}
