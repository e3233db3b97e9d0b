package server_test

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/persist"
	"shoal/internal/resp"
)

// A hash of 200k fields and a 20 MB string move in frames of at most
// 1 MiB, and readers of the target never see them partly there: every
// read the target answers (after the flip) has the whole value.
func TestSlotMoveBigKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 30 MB")
	}
	rig := newMoveRig(t, "big", cluster.OpMigrateDone)
	c, g, tag, slot, src, dst := rig.c, rig.g, rig.tag, rig.slot, rig.src, rig.dst
	mc := c.client()
	ctx := context.Background()
	hk, sk := "{"+tag+"}:h", "{"+tag+"}:s"
	const fields = 200_000
	const strLen = 20 << 20
	p := src.rdb.Pipeline()
	for i := 0; i < fields; i += 1000 {
		args := []any{}
		for j := i; j < i+1000; j++ {
			args = append(args, "f"+strconv.Itoa(j), strconv.Itoa(j*7))
		}
		p.HSet(ctx, hk, args...)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// In 1 MB appends: the nodes' clients time out after 2 s.
	piece := strings.Repeat("0123456789abcdef", (1<<20)/16)
	for i := 0; i < strLen>>20; i++ {
		if err := src.rdb.Append(ctx, sk, piece).Err(); err != nil {
			t.Fatal(err)
		}
	}
	want, err := src.rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", slot).Text()
	if err != nil {
		t.Fatal(err)
	}

	// The image frames as a target would read them: bounded, and the
	// parts reassemble to the values.
	nc, err := net.Dial("tcp", src.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write(resp.AppendCommand(nil, "CLUSTER", "SLOTSYNC", strconv.Itoa(slot)))
	br := bufio.NewReader(nc)
	parts := map[string]int{}
	built := map[string]*engine.Entry{}
	for done := false; !done; {
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		r, err := resp.ReadReply(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, e := range r.Elems {
			size += len(e.Str)
		}
		if size > 1<<20 {
			t.Fatalf("a %q frame of %d bytes", r.Elems[0].Str, size)
		}
		switch r.Elems[0].Str {
		case "part":
			key, e, err := persist.DecodeEntry([]byte(r.Elems[1].Str))
			if err != nil {
				t.Fatal(err)
			}
			parts[string(key)]++
			if b := built[string(key)]; b == nil {
				built[string(key)] = e
			} else if err := persist.MergeEntryPart(b, e); err != nil {
				t.Fatal(err)
			}
		case "imaged":
			done = true
		}
	}
	nc.Close()
	if parts[hk] < 2 || parts[sk] < 20 || built[hk].Len() != fields || len(built[sk].Bytes()) != strLen {
		t.Fatalf("parts %v; hash of %d fields, string of %d bytes", parts, built[hk].Len(), len(built[sk].Bytes()))
	}

	// The move, with readers on the target from the cutover on.
	if _, err := mc.Migrate(ctx, []int{slot}, 2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "cutover", func() bool { return c.leaderMap().Fenced(slot) })
	var whole atomic.Int64
	var bad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int64
				var err error
				if w == 0 {
					n, err = dst.rdb.HLen(ctx, hk).Result()
				} else {
					n, err = dst.rdb.StrLen(ctx, sk).Result()
				}
				if err != nil {
					continue // MOVED or TRYAGAIN until the flip
				}
				if (w == 0 && n != fields) || (w == 1 && n != strLen) {
					bad.Store("a read saw " + strconv.FormatInt(n, 10))
				}
				whole.Add(1)
			}
		}()
	}
	g.done.Store(false)
	waitUntil(t, "the slot moved", func() bool {
		mp := c.leaderMap()
		return int(mp.Slots[slot]) == 2 && mp.Migrations[slot] == nil
	})
	waitUntil(t, "reads of the moved keys on the target", func() bool { return whole.Load() >= 10 })
	close(stop)
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	got, err := dst.rdb.Do(ctx, "DEBUG", "DIGEST-SLOT", slot).Text()
	if err != nil || got != want {
		t.Fatalf("target's slot digest %s (%v), source's was %s", got, err, want)
	}
	if v, err := dst.rdb.GetRange(ctx, sk, strLen-16, -1).Result(); err != nil || v != "0123456789abcdef" {
		t.Fatalf("string tail %q %v", v, err)
	}
	waitUntil(t, "the source drops the slot", func() bool { return countInSlot(src, slot) == 0 })
}
