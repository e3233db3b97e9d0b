package e2e

// Replication with real processes: a primary killed with SIGKILL under
// synchronous replication and a replica promoted in its place, a replica
// killed and restarted on its own files, and replicas refusing writes on
// both protocols.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// replPoll is how long a poll for a replication state may take: long
// enough for a loaded 2-core machine, short enough to fail well within
// the test's budget.
const replPoll = 45 * time.Second

// infoRepl returns INFO replication as a map.
func infoRepl(t *testing.T, rdb *redis.Client) map[string]string {
	t.Helper()
	s, err := rdb.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatalf("INFO replication: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

func infoInt(t *testing.T, m map[string]string, key string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(m[key], 10, 64)
	if err != nil {
		t.Fatalf("INFO replication %s = %q: %v", key, m[key], err)
	}
	return n
}

// slaveFields parses a slaveN line: ip=..,port=..,state=..,...
func slaveFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Split(line, ",") {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// pollUntil calls cond until it reports true, failing the test with
// cond's last description after timeout. There is no event to wait on
// from outside the processes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 2 * time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// waitReplicasOnline waits until the primary lists n replicas, all online.
func waitReplicasOnline(t *testing.T, primary *redis.Client, n int) {
	t.Helper()
	pollUntil(t, replPoll, fmt.Sprintf("%d online replicas", n), func() (bool, string) {
		m := infoRepl(t, primary)
		if m["connected_slaves"] != strconv.Itoa(n) {
			return false, fmt.Sprint(m)
		}
		for i := range n {
			if slaveFields(m["slave"+strconv.Itoa(i)])["state"] != "online" {
				return false, fmt.Sprint(m)
			}
		}
		return true, ""
	})
}

func digest(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	d, err := rdb.Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatalf("DEBUG DIGEST: %v", err)
	}
	return d
}

// waitSameData waits until the replica's link is up, its offset is the
// primary's and both hold the same keyspace.
func waitSameData(t *testing.T, primary, replica *redis.Client) {
	t.Helper()
	pollUntil(t, replPoll, "the replica to converge", func() (bool, string) {
		pm, rm := infoRepl(t, primary), infoRepl(t, replica)
		if rm["master_link_status"] != "up" || rm["master_sync_in_progress"] != "0" {
			return false, fmt.Sprintf("replica: %v", rm)
		}
		if po, ro := pm["master_repl_offset"], rm["slave_repl_offset"]; po != ro {
			return false, fmt.Sprintf("primary offset %s, replica offset %s", po, ro)
		}
		if pd, rd := digest(t, primary), digest(t, replica); pd != rd {
			return false, fmt.Sprintf("digests %s (primary) and %s (replica)", pd, rd)
		}
		return true, ""
	})
}

// replWriterResult is what one writer saw acknowledged.
type replWriterResult struct {
	sets     [][2]string
	maxIncr  map[string]int64 // highest acknowledged INCR result per counter
	acked    int
	err      error
	errEarly bool // the error came before the kill
}

const (
	replWriters  = 6
	replCounters = 4
)

// replPad makes SET records large enough that a stopped replica's socket
// buffers cannot hold all it misses.
var replPad = strings.Repeat("x", 1000)

// runReplWriter alternates SET of a fresh key and INCR of a shared
// counter until a command fails.
func runReplWriter(rdb *redis.Client, w int, prog *progress, killed func() bool) *replWriterResult {
	ctx := context.Background()
	res := &replWriterResult{maxIncr: map[string]int64{}}
	for i := 0; ; i++ {
		var err error
		if i%2 == 0 {
			key, val := fmt.Sprintf("rk:%d:%d", w, i), fmt.Sprintf("rv:%d:%d:%s", w, i, replPad)
			if err = rdb.Set(ctx, key, val, 0).Err(); err == nil {
				res.sets = append(res.sets, [2]string{key, val})
			}
		} else {
			key := "rctr:" + strconv.Itoa((i/2+w)%replCounters)
			var n int64
			if n, err = rdb.Incr(ctx, key).Result(); err == nil {
				res.maxIncr[key] = max(res.maxIncr[key], n)
			}
		}
		if err != nil {
			res.err, res.errEarly = err, !killed()
			return res
		}
		res.acked++
		prog.add()
	}
}

// TestReplFailoverNoAckedWriteLost: with sync-replicas 1 every write the
// primary acknowledged is on a replica. The primary is killed with
// SIGKILL under writes; the most advanced replica is promoted and must
// hold every acknowledged write, and the other replica follows it with an
// incremental resync and ends up with the same data.
func TestReplFailoverNoAckedWriteLost(t *testing.T) {
	ctx := context.Background()
	p := startShoal(t, "--dir", t.TempDir(), "--appendonly", "yes",
		"--sync-replicas", "1", "--sync-timeout", "30000")
	replicaArgs := []string{"--appendonly", "yes", "--replicaof", "127.0.0.1", strconv.Itoa(p.port)}
	r1 := startShoal(t, append([]string{"--dir", t.TempDir()}, replicaArgs...)...)
	r2 := startShoal(t, append([]string{"--dir", t.TempDir()}, replicaArgs...)...)
	pc := crashClient(t, p, replWriters)
	waitReplicasOnline(t, pc, 2)

	prog := &progress{}
	var mu sync.Mutex
	isKilled := false
	killed := func() bool { mu.Lock(); defer mu.Unlock(); return isKilled }
	results := make([]*replWriterResult, replWriters)
	var wg sync.WaitGroup
	for w := range replWriters {
		wg.Go(func() { results[w] = runReplWriter(pc, w, prog, killed) })
	}
	// Halfway, stop the second replica (SIGSTOP): the first one keeps
	// acknowledging, the second falls behind, so the follower's resync
	// after the failover has records to carry.
	const target = 6000
	wait(t, prog.at(target/2), fmt.Sprintf("%d acknowledged writes", target/2))
	if err := r2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	cont := func() {
		if stopped {
			stopped = false
			if err := r2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		}
	}
	defer cont()
	wait(t, prog.at(target), fmt.Sprintf("%d acknowledged writes", target))
	mu.Lock()
	isKilled = true
	mu.Unlock()
	p.kill9(t)
	cont()
	wg.Wait()
	acked := 0
	for w, r := range results {
		if r.errEarly {
			t.Errorf("writer %d failed before the kill: %v", w, r.err)
		}
		acked += r.acked
	}
	t.Logf("primary killed after %d acknowledged writes", acked)
	if t.Failed() {
		t.FailNow()
	}

	// Once a replica sees its link down it has applied everything it
	// received (records are applied as they are read).
	rcs := []*redis.Client{crashClient(t, r1, 2), crashClient(t, r2, 2)}
	procs := []*proc{r1, r2}
	offsets := make([]int64, 2)
	for i, rc := range rcs {
		pollUntil(t, replPoll, "the replica to see its primary gone", func() (bool, string) {
			m := infoRepl(t, rc)
			return m["master_link_status"] == "down", fmt.Sprint(m)
		})
		m := infoRepl(t, rc)
		offsets[i] = infoInt(t, m, "master_repl_offset")
		if so := infoInt(t, m, "slave_repl_offset"); so != offsets[i] {
			t.Errorf("replica %d: slave_repl_offset %d, master_repl_offset %d", i, so, offsets[i])
		}
	}
	best := 0
	if offsets[1] > offsets[0] {
		best = 1
	}
	other := 1 - best
	t.Logf("replica offsets %v: promoting replica %d", offsets, best)
	promoted, follower := rcs[best], rcs[other]
	if err := promoted.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatalf("REPLICAOF NO ONE: %v", err)
	}
	if m := infoRepl(t, promoted); m["role"] != "master" {
		t.Fatalf("promoted node's role: %v", m)
	}
	if err := follower.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(procs[best].port)).Err(); err != nil {
		t.Fatalf("REPLICAOF the promoted node: %v", err)
	}

	// Every acknowledged write is on the promoted node.
	want := map[string]string{}
	maxIncr := map[string]int64{}
	for _, r := range results {
		for _, kv := range r.sets {
			want[kv[0]] = kv[1]
		}
		for k, n := range r.maxIncr {
			maxIncr[k] = max(maxIncr[k], n)
		}
	}
	checkAcked := func(name string, rdb *redis.Client) {
		t.Helper()
		checkAckedSets(ctx, t, rdb, name, want)
		for c := range replCounters {
			key := "rctr:" + strconv.Itoa(c)
			got, err := rdb.Get(ctx, key).Int64()
			if errors.Is(err, redis.Nil) {
				got, err = 0, nil
			}
			if err != nil {
				t.Fatalf("%s: GET %s: %v", name, key, err)
			}
			if got < maxIncr[key] {
				t.Errorf("%s: %s = %d, but INCR %d was acknowledged", name, key, got, maxIncr[key])
			}
		}
	}
	checkAcked("promoted node", promoted)

	// The other replica follows the promoted node incrementally (PSYNC2)
	// and ends with the same data.
	waitSameData(t, promoted, follower)
	checkAcked("the other replica", follower)
	pm := infoRepl(t, promoted)
	if infoInt(t, pm, "sync_partial_ok") < 1 || infoInt(t, pm, "sync_full") != 0 {
		t.Errorf("the other replica's resync was not incremental: sync_partial_ok=%s sync_full=%s sync_partial_err=%s",
			pm["sync_partial_ok"], pm["sync_full"], pm["sync_partial_err"])
	}
	if pm["connected_slaves"] != "1" {
		t.Errorf("promoted node: connected_slaves=%s", pm["connected_slaves"])
	}
	// The promoted node takes writes, and they reach the follower.
	if err := promoted.Set(ctx, "after-failover", "yes", 0).Err(); err != nil {
		t.Fatalf("SET on the promoted node: %v", err)
	}
	waitSameData(t, promoted, follower)
	if v, err := follower.Get(ctx, "after-failover").Result(); err != nil || v != "yes" {
		t.Errorf("GET after-failover on the follower = %q, %v", v, err)
	}
}

// TestReplReplicaKill9ResumesIncrementally: a replica with the log on,
// killed with SIGKILL and restarted on its directory, resumes from its
// own offset with an incremental resync.
func TestReplReplicaKill9ResumesIncrementally(t *testing.T) {
	ctx := context.Background()
	p := startShoal(t, "--dir", t.TempDir())
	replicaArgs := []string{"--dir", t.TempDir(), "--appendonly", "yes", "--replicaof", "127.0.0.1", strconv.Itoa(p.port)}
	r := startShoal(t, replicaArgs...)
	pc := crashClient(t, p, 4)
	waitReplicasOnline(t, pc, 1)

	write := func(from, to int) {
		t.Helper()
		const batch = 500
		for i := from; i < to; i += batch {
			pipe := pc.Pipeline()
			for j := i; j < min(i+batch, to); j++ {
				pipe.Set(ctx, "key:"+strconv.Itoa(j), "val:"+strconv.Itoa(j), 0)
				pipe.Incr(ctx, "counter:"+strconv.Itoa(j%7))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("writing: %v", err)
			}
		}
	}
	write(0, 5000)
	rc := crashClient(t, r, 2)
	waitSameData(t, pc, rc)
	before := infoRepl(t, pc)
	fullBefore, partialBefore := infoInt(t, before, "sync_full"), infoInt(t, before, "sync_partial_ok")
	if fullBefore != 1 {
		t.Errorf("sync_full = %d after the replica's first sync, want 1", fullBefore)
	}

	r.kill9(t)
	write(5000, 10000)
	if err := pc.Del(ctx, "key:17").Err(); err != nil {
		t.Fatal(err)
	}
	r = startShoal(t, replicaArgs...)
	rc = crashClient(t, r, 2)
	waitSameData(t, pc, rc)
	after := infoRepl(t, pc)
	if f, pok := infoInt(t, after, "sync_full"), infoInt(t, after, "sync_partial_ok"); f != fullBefore || pok != partialBefore+1 {
		t.Errorf("after the replica's restart: sync_full %d -> %d, sync_partial_ok %d -> %d; want an incremental resync (sync_partial_err=%s)",
			fullBefore, f, partialBefore, pok, after["sync_partial_err"])
	}
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 9999+7 {
		t.Errorf("replica DBSIZE = %d, %v; want %d", n, err, 9999+7)
	}
	if v, err := rc.Get(ctx, "key:9999").Result(); err != nil || v != "val:9999" {
		t.Errorf("replica GET key:9999 = %q, %v", v, err)
	}
}

// TestReplReadOnlyBothProtocols: a replica refuses writes over RESP and
// memcached and serves the primary's data to both.
func TestReplReadOnlyBothProtocols(t *testing.T) {
	ctx := context.Background()
	pm := freePort(t)
	p := startShoal(t, "--memcached-port", strconv.Itoa(pm))
	rm := freePort(t)
	r := startShoal(t, "--memcached-port", strconv.Itoa(rm), "--replicaof", "127.0.0.1", strconv.Itoa(p.port))
	pc, rc := newClient(t, p, 2), newClient(t, r, 3)
	waitReplicasOnline(t, pc, 1)

	if err := pc.Set(ctx, "rkey", "from-resp", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := memcache.New("127.0.0.1:" + strconv.Itoa(pm)).Set(&memcache.Item{Key: "mkey", Value: []byte("from-mc"), Flags: 7}); err != nil {
		t.Fatalf("memcached set on the primary: %v", err)
	}
	waitSameData(t, pc, rc)

	// RESP: writes refused, reads served.
	if err := rc.Set(ctx, "rkey", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
		t.Errorf("SET on the replica: %v, want READONLY", err)
	}
	if err := rc.Incr(ctx, "n").Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
		t.Errorf("INCR on the replica: %v, want READONLY", err)
	}
	if v, err := rc.Get(ctx, "rkey").Result(); err != nil || v != "from-resp" {
		t.Errorf("GET rkey on the replica = %q, %v", v, err)
	}
	if v, err := rc.Get(ctx, "mkey").Result(); err != nil || v != "from-mc" {
		t.Errorf("GET mkey on the replica = %q, %v", v, err)
	}

	// memcached, raw: the exact reply lines.
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(rm), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	exchange := func(req string, lines int) []string {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		var out []string
		for range lines {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reply to %q: %q, %v", req, line, err)
			}
			out = append(out, line)
		}
		return out
	}
	for _, req := range []string{"set mkey 0 0 1\r\nx\r\n", "set newkey 0 0 1\r\nx\r\n", "incr mkey 1\r\n", "delete rkey\r\n"} {
		if got := exchange(req, 1)[0]; !strings.HasPrefix(got, "SERVER_ERROR READONLY") || !strings.HasSuffix(got, "\r\n") {
			t.Errorf("memcached %q on the replica: %q, want SERVER_ERROR READONLY ...", req, got)
		}
	}
	got := exchange("get mkey rkey\r\n", 5)
	want := []string{"VALUE mkey 7 7\r\n", "from-mc\r\n", "VALUE rkey 0 9\r\n", "from-resp\r\n", "END\r\n"}
	if !slices.Equal(got, want) {
		t.Errorf("memcached get on the replica: %q, want %q", got, want)
	}
	// gomemcache sees the same.
	it, err := memcache.New("127.0.0.1:" + strconv.Itoa(rm)).Get("mkey")
	if err != nil || string(it.Value) != "from-mc" || it.Flags != 7 {
		t.Errorf("gomemcache get on the replica: %+v, %v", it, err)
	}
	// Nothing the refused writes touched changed.
	if d1, d2 := digest(t, pc), digest(t, rc); d1 != d2 {
		t.Errorf("digests differ after refused writes: %s, %s", d1, d2)
	}
	if n, err := rc.Exists(ctx, "newkey", "n").Result(); err != nil || n != 0 {
		t.Errorf("refused writes created keys: %d, %v", n, err)
	}
}
