package server

import (
	"sync/atomic"
	"testing"
	"time"
)

// latBucket puts a duration in the first bucket whose bound is at least
// the duration (Prometheus' le), the overflow bucket past the last bound.
func TestLatBucket(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want int
	}{
		{-5, 0}, {0, 0}, {1, 0}, {1024, 0}, {1025, 1}, {2048, 1}, {2049, 2},
		{int64(100 * time.Microsecond), 7}, // 65.536 µs < 100 µs <= 131.072 µs
		{1024 << 20, 20}, {1024<<20 + 1, 21}, {int64(time.Hour), 21},
	} {
		if got := latBucket(c.ns); got != c.want {
			t.Errorf("latBucket(%d) = %d, want %d", c.ns, got, c.want)
		}
		if c.want < latBuckets-1 {
			if b := latBound(c.want); float64(c.ns) > b*1e9 {
				t.Errorf("%d ns above its bucket's bound %v s", c.ns, b)
			}
		}
		if c.want > 0 && c.want < latBuckets-1 && float64(c.ns) <= latBound(c.want-1)*1e9 {
			t.Errorf("%d ns within the previous bucket's bound", c.ns)
		}
	}
}

// The calls are the buckets' sum.
func TestCmdStatCalls(t *testing.T) {
	var st cmdStat
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Millisecond, time.Hour} {
		inc(&st.lat[latBucket(int64(d))], 1)
	}
	if n := st.calls(); n != 4 {
		t.Fatalf("calls %d, want 4", n)
	}
}

var sinkStat struct {
	cmdStat
	calls atomic.Int64 // the counter the calls had before the histogram
}

// BenchmarkCmdStatRecord compares what call() recorded per command
// before the latency histogram (a calls counter and microseconds) with
// what it records now (one bucket, which counts the call, and
// nanoseconds): the whole per-command cost of the server's metrics.
func BenchmarkCmdStatRecord(b *testing.B) {
	durs := make([]time.Duration, 1024)
	for i := range durs {
		durs[i] = time.Duration(200 + i*i*37%400000) // 200 ns .. 400 µs, mixed
	}
	b.Run("before", func(b *testing.B) {
		st := &sinkStat
		for i := 0; b.Loop(); i++ {
			el := durs[i&1023]
			inc(&st.calls, 1)
			inc(&st.nsec, el.Microseconds())
		}
	})
	b.Run("now", func(b *testing.B) {
		st := &sinkStat
		for i := 0; b.Loop(); i++ {
			el := durs[i&1023]
			_ = el.Microseconds() // still computed for the slowlog
			inc(&st.lat[latBucket(int64(el))], 1)
			inc(&st.nsec, int64(el))
		}
	})
}
