package e2e

// Process crashes with the append-only log on: the server is killed with
// SIGKILL while clients write, restarted on the same --dir, and every
// write a client saw acknowledged must be there, once.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	crashWriters  = 8
	crashCounters = 4
	crashRounds   = 3
)

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("shoal still running 30 s after SIGKILL")
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("shoal exited on its own before the SIGKILL: %v\n%s", p.err, p.log.String())
	}
}

// checkAckedSets fails for every acknowledged SET (key → value) that rdb
// does not hold with its value (MGET in batches of 500).
func checkAckedSets(ctx context.Context, t *testing.T, rdb *redis.Client, where string, want map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	missing := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		vals, err := rdb.MGet(ctx, batch...).Result()
		if err != nil {
			t.Fatalf("%s: MGET: %v", where, err)
		}
		for i, v := range vals {
			if s, _ := v.(string); s != want[batch[i]] {
				if missing++; missing <= 10 {
					t.Errorf("%s: acknowledged SET %s = %q, got %v", where, batch[i], want[batch[i]], v)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d acknowledged SET keys lost or wrong", where, missing, len(want))
	}
}

// crashClient is a client that never retries: a command resent after a
// network error could be applied twice, which the bounds below would
// blame on the server.
func crashClient(t *testing.T, p *proc, poolSize int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:         p.addr,
		Protocol:     2,
		PoolSize:     poolSize,
		MaxRetries:   -1,
		DialTimeout:  10 * time.Second,
		ReadTimeout:  60 * time.Second, // an fsync on a slow disk is no error
		WriteTimeout: 60 * time.Second,
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// progress counts acknowledged writes; at(n) is closed once n are.
type progress struct {
	mu      sync.Mutex
	n       int64
	waiters []progressWaiter
}

type progressWaiter struct {
	n  int64
	ch chan struct{}
}

func (p *progress) add() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.waiters = slices.DeleteFunc(p.waiters, func(w progressWaiter) bool {
		if p.n >= w.n {
			close(w.ch)
			return true
		}
		return false
	})
}

func (p *progress) count() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *progress) at(n int64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	if p.n >= n {
		close(ch)
	} else {
		p.waiters = append(p.waiters, progressWaiter{n, ch})
	}
	return ch
}

// wait blocks until ch is closed; the deadline only keeps a broken server
// from hanging the test.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type crashOp int

const (
	opIncr crashOp = iota
	opSet
	opPush
)

// writerResult is what one writer saw during one round.
type writerResult struct {
	incrAcked map[string]int64
	sets      [][2]string // acknowledged SETs, key and value
	pushes    []string    // acknowledged LPUSHes, in order
	// The last command, whose reply did not arrive: it may or may not
	// have been applied.
	doubt      crashOp
	doubtKey   string
	doubtValue string
	hasDoubt   bool
	err        error
	errEarly   bool // the error came before the kill
}

func counterKey(i int) string { return "ctr:" + strconv.Itoa(i) }
func listKey(w int) string    { return "list:" + strconv.Itoa(w) }

// runWriter issues INCR, SET and LPUSH in turn until a command fails.
func runWriter(rdb *redis.Client, round, w int, prog *progress, killed func() bool) *writerResult {
	ctx := context.Background()
	res := &writerResult{incrAcked: map[string]int64{}}
	for i := 0; ; i++ {
		var err error
		op := crashOp(i % 3)
		var key, val string
		switch op {
		case opIncr:
			key = counterKey((i/3 + w) % crashCounters)
			err = rdb.Incr(ctx, key).Err()
		case opSet:
			key = fmt.Sprintf("k:%d:%d:%d", round, w, i)
			val = fmt.Sprintf("v:%d:%d:%d", round, w, i)
			err = rdb.Set(ctx, key, val, 0).Err()
		case opPush:
			key, val = listKey(w), fmt.Sprintf("%d:%d", round, i)
			err = rdb.LPush(ctx, key, val).Err()
		}
		if err != nil {
			res.doubt, res.doubtKey, res.doubtValue, res.hasDoubt = op, key, val, true
			res.err, res.errEarly = err, !killed()
			return res
		}
		switch op {
		case opIncr:
			res.incrAcked[key]++
		case opSet:
			res.sets = append(res.sets, [2]string{key, val})
		case opPush:
			res.pushes = append(res.pushes, val)
		}
		prog.add()
	}
}

// crashModel is what the database must hold, as far as it is known: the
// state observed after the last restart plus what was acknowledged since.
type crashModel struct {
	counters map[string]int64
	keys     map[string]string
	lists    map[string][]string // oldest push first
}

func newCrashModel() *crashModel {
	return &crashModel{counters: map[string]int64{}, keys: map[string]string{}, lists: map[string][]string{}}
}

// check compares the restarted server's data with the model and the
// round's results, then takes the observed state as the new model.
func (m *crashModel) check(t *testing.T, rdb *redis.Client, round int, results []*writerResult) {
	t.Helper()
	ctx := context.Background()
	// Counters: acknowledged <= value <= acknowledged + in doubt.
	for c := 0; c < crashCounters; c++ {
		key := counterKey(c)
		lo := m.counters[key]
		var doubt int64
		for _, r := range results {
			lo += r.incrAcked[key]
			if r.hasDoubt && r.doubt == opIncr && r.doubtKey == key {
				doubt++
			}
		}
		got, err := rdb.Get(ctx, key).Int64()
		if errors.Is(err, redis.Nil) {
			got, err = 0, nil
		}
		if err != nil {
			t.Fatalf("round %d: GET %s: %v", round, key, err)
		}
		if got < lo || got > lo+doubt {
			t.Errorf("round %d: %s = %d after restart, want %d..%d (%d known before the round, %d acknowledged INCRs in it, %d in doubt)",
				round, key, got, lo, lo+doubt, m.counters[key], lo-m.counters[key], doubt)
		}
		m.counters[key] = got
	}

	// SET keys: every acknowledged one holds its value; one in doubt may
	// be there; no other k:* key exists.
	for _, r := range results {
		for _, kv := range r.sets {
			m.keys[kv[0]] = kv[1]
		}
	}
	var doubtKeys []string
	for _, r := range results {
		if r.hasDoubt && r.doubt == opSet {
			doubtKeys = append(doubtKeys, r.doubtKey)
		}
	}
	checkAckedSets(ctx, t, rdb, fmt.Sprintf("round %d (after restart)", round), m.keys)
	for _, r := range results {
		if !r.hasDoubt || r.doubt != opSet {
			continue
		}
		v, err := rdb.Get(ctx, r.doubtKey).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			t.Fatalf("round %d: GET %s: %v", round, r.doubtKey, err)
		case v != r.doubtValue:
			t.Errorf("round %d: SET in doubt %s = %q, got %q", round, r.doubtKey, r.doubtValue, v)
		default:
			m.keys[r.doubtKey] = v
		}
	}
	var n int
	iter := rdb.Scan(ctx, 0, "k:*", 1000).Iterator()
	for iter.Next(ctx) {
		if _, ok := m.keys[iter.Val()]; !ok {
			t.Errorf("round %d: key %s exists but was never acknowledged (in doubt: %v)", round, iter.Val(), doubtKeys)
		}
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("round %d: SCAN: %v", round, err)
	}
	if n != len(m.keys) {
		t.Errorf("round %d: SCAN k:* found %d keys, want %d", round, n, len(m.keys))
	}

	// Lists: the known content, the acknowledged pushes in order, and
	// maybe the one in doubt, exactly.
	for w, r := range results {
		key := listKey(w)
		want := append(slices.Clone(m.lists[key]), r.pushes...)
		got, err := rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatalf("round %d: LRANGE %s: %v", round, key, err)
		}
		slices.Reverse(got) // LPUSH: the newest is first
		ok := slices.Equal(got, want)
		if !ok && r.hasDoubt && r.doubt == opPush {
			ok = slices.Equal(got, append(want, r.doubtValue))
		}
		if !ok {
			t.Errorf("round %d: %s has %d elements after restart, want %d acknowledged (+%d in doubt)%s",
				round, key, len(got), len(want), b2n(r.hasDoubt && r.doubt == opPush), listDiff(got, want))
		}
		m.lists[key] = got
	}
}

func b2n(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listDiff describes where got first differs from want.
func listDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("; first difference at %d: %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("; extra elements from %q", got[len(want)])
	}
	if len(got) < len(want) {
		return fmt.Sprintf("; missing elements from %q", want[len(got)])
	}
	return ""
}

// waitLoaded polls INFO until the server has loaded its data (it answers
// PING, and so waitReady, while loading), then asserts that it logs and
// logged without errors.
func waitLoaded(t *testing.T, rdb *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	delay := time.Millisecond
	var info string
	for {
		var err error
		info, err = rdb.Info(context.Background(), "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		// The log opens after the load: a server briefly answers with
		// loading:0 and aof_enabled:0 (the window that
		// TestKill9WriteRightAfterStart is about). This check only
		// reads, so it waits for both.
		if strings.Contains(info, "\nloading:0") && strings.Contains(info, "\naof_enabled:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still loading after 2 minutes:\n%s", info)
		}
		time.Sleep(delay) // no event to wait on
		delay = min(delay*2, 50*time.Millisecond)
	}
	for _, want := range []string{"aof_last_write_status:ok"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO persistence lacks %s:\n%s", want, info)
		}
	}
}

// crashRound runs the writers against p, calls kill once they are going,
// and returns what each saw.
func crashRound(t *testing.T, p *proc, round int, kill func(prog *progress, killed func())) []*writerResult {
	t.Helper()
	// Writes are refused with -LOADING until the data is loaded and the
	// log is open; writers start once the server is ready, as clients do.
	rdb := crashClient(t, p, crashWriters)
	waitLoaded(t, rdb)
	prog := &progress{}
	var mu sync.Mutex
	isKilled := false
	killed := func() bool { mu.Lock(); defer mu.Unlock(); return isKilled }
	results := make([]*writerResult, crashWriters)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() { results[w] = runWriter(rdb, round, w, prog, killed) })
	}
	kill(prog, func() {
		mu.Lock()
		isKilled = true
		mu.Unlock()
		p.kill9(t)
	})
	wg.Wait()
	var acked int
	for w, r := range results {
		if r.errEarly {
			t.Errorf("round %d: writer %d failed before the kill: %v", round, w, r.err)
		}
		acked += len(r.sets) + len(r.pushes)
		for _, n := range r.incrAcked {
			acked += int(n)
		}
	}
	t.Logf("round %d: killed after %d acknowledged writes", round, acked)
	if t.Failed() {
		t.FailNow()
	}
	return results
}

// testKill9 kills the server three times while writers run, restarting it
// on the same directory each time, and checks nothing acknowledged is lost
// and nothing is applied twice.
func testKill9(t *testing.T, fsync string) {
	dir := t.TempDir()
	args := []string{"--dir", dir, "--appendonly", "yes", "--appendfsync", fsync}
	p := startShoal(t, args...)
	m := newCrashModel()
	// Kill at different depths of progress: early, mid, later.
	targets := []int64{200, 1000, 2500}
	for round := range crashRounds {
		results := crashRound(t, p, round, func(prog *progress, kill func()) {
			wait(t, prog.at(targets[round]), fmt.Sprintf("%d acknowledged writes", targets[round]))
			kill()
		})
		p = startShoal(t, args...)
		rdb := crashClient(t, p, 1)
		waitLoaded(t, rdb)
		m.check(t, rdb, round, results)
		if t.Failed() {
			t.FailNow()
		}
	}
}

func TestKill9AlwaysNoAckedWriteLost(t *testing.T) { testKill9(t, "always") }

// A process kill is no power loss: replies wait until the record is
// written to the OS, so with everysec nothing acknowledged is lost either.
func TestKill9EverysecNoAckedWriteLost(t *testing.T) { testKill9(t, "everysec") }

// bgsaveLoop issues BGSAVE over and over, waiting for each to finish by
// polling INFO, and reports each start on started (without blocking). It
// returns the first other error (once the server is killed, a connection
// error).
func bgsaveLoop(rdb *redis.Client, started chan<- int) error {
	ctx := context.Background()
	for n := 0; ; {
		err := rdb.BgSave(ctx).Err()
		if err != nil && !strings.Contains(err.Error(), "already in progress") {
			return fmt.Errorf("BGSAVE: %w", err)
		}
		if err == nil {
			n++
			select {
			case started <- n:
			default:
			}
		}
		// Poll for the end of the save: there is no event to wait on.
		delay := 200 * time.Microsecond
		for {
			info, err := rdb.Info(ctx, "persistence").Result()
			if err != nil {
				return fmt.Errorf("INFO: %w", err)
			}
			if strings.Contains(info, "rdb_bgsave_in_progress:0") {
				break
			}
			time.Sleep(delay)
			delay = min(delay*2, 5*time.Millisecond)
		}
	}
}

// TestKill9DuringSnapshot kills the server while BGSAVE snapshots run
// back to back under writes: the snapshot's per-slot marks and the log
// replay must together apply each acknowledged write exactly once.
func TestKill9DuringSnapshot(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec"}
	p := startShoal(t, args...)
	// Filler data, so a snapshot takes long enough to be killed in.
	{
		rdb := crashClient(t, p, 1)
		ctx := context.Background()
		const fill, batch = 60000, 1000
		for i := 0; i < fill; i += batch {
			kv := make([]any, 0, 2*batch)
			for j := i; j < i+batch; j++ {
				kv = append(kv, "fill:"+strconv.Itoa(j), strings.Repeat("x", 100))
			}
			if err := rdb.MSet(ctx, kv...).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := newCrashModel()
	// Writes acknowledged after a BGSAVE started and before the kill: 0
	// kills right at the start of a snapshot, the others further into it.
	after := []int64{0, 30, 300}
	for round := range crashRounds {
		saves := crashClient(t, p, 1)
		started := make(chan int)
		saverDone := make(chan struct{})
		var saverErr error
		go func() { defer close(saverDone); saverErr = bgsaveLoop(saves, started) }()
		var savesAtKill int
		results := crashRound(t, p, round, func(prog *progress, kill func()) {
			wait(t, prog.at(300), "300 acknowledged writes")
			// Let a couple of snapshots complete under writes first.
			for savesAtKill < 3 {
				select {
				case savesAtKill = <-started:
				case <-saverDone:
					t.Fatalf("round %d: the BGSAVE loop stopped before the kill: %v", round, saverErr)
				case <-time.After(2 * time.Minute):
					t.Fatal("timed out waiting for BGSAVE to start")
				}
			}
			wait(t, prog.at(prog.count()+after[round]), "writes after BGSAVE started")
			kill()
		})
		wait(t, saverDone, "the BGSAVE loop to stop")
		logText := p.log.String()
		t.Logf("round %d: %d BGSAVEs started before the kill, %d snapshots completed", round, savesAtKill,
			strings.Count(logText, "DB saved on disk"))
		p = startShoal(t, args...)
		rdb := crashClient(t, p, 1)
		waitLoaded(t, rdb)
		m.check(t, rdb, round, results)
		if n, err := rdb.Exists(context.Background(), "fill:0", "fill:59999").Result(); err != nil || n != 2 {
			t.Errorf("round %d: filler keys after restart: %d, %v", round, n, err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestKill9WriteRightAfterStart acknowledges a write as soon as the
// server takes one, on a fresh directory and then on restarts (once it
// stops answering -LOADING), and SIGKILLs it right after: a write the
// server acknowledged must be in the log even if it came before the
// log was fully open.
func TestKill9WriteRightAfterStart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--dir", dir, "--appendonly", "yes", "--appendfsync", "always"}
	ctx := context.Background()
	const starts = 6
	for i := range starts {
		p := startShoal(t, args...)
		rdb := crashClient(t, p, 1)
		for {
			err := rdb.Set(ctx, "early:"+strconv.Itoa(i), i, 0).Err()
			if err == nil {
				break
			}
			if !strings.HasPrefix(err.Error(), "LOADING") {
				t.Fatalf("start %d: SET: %v", i, err)
			}
		}
		p.kill9(t)
	}
	p := startShoal(t, args...)
	rdb := crashClient(t, p, 1)
	waitLoaded(t, rdb)
	var lost []int
	for i := range starts {
		if v, err := rdb.Get(ctx, "early:"+strconv.Itoa(i)).Result(); errors.Is(err, redis.Nil) {
			lost = append(lost, i)
		} else if err != nil || v != strconv.Itoa(i) {
			t.Fatalf("GET early:%d = %q, %v", i, v, err)
		}
	}
	if len(lost) > 0 {
		t.Errorf("acknowledged SETs lost after SIGKILL: the first write after starts %v (of %d)", lost, starts)
	}
}
