package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"

	"shoal/internal/manager"
)

// devCluster is a running `shoal dev`.
type devCluster struct {
	cmd     *exec.Cmd
	manager string // host:port
	dash    string // dashboard http://host:port/dashboard/
	nodes   []string
	proxy   string // proxy-resp host:port
	proxyMC string // proxy-memcached host:port
	admin   string // proxy-admin http://host:port
	// nodeAdmin are the node-admin http://host:port lines (nodes, then
	// standby nodes, as printed).
	nodeAdmin []string
	log       *syncBuffer
}

// startDev starts `shoal dev --base-port 0`. Its ports are picked free
// and then released, so a test running in parallel may take one before a
// node binds it: a start where a child exits before "ready" is retried
// (twice at most) on fresh ports.
func startDev(t *testing.T, args ...string) *devCluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d, retry := tryStartDev(t, attempt == 3, args...)
		if d != nil {
			return d
		}
		t.Logf("shoal dev start %d failed (%s), retrying", attempt, retry)
	}
}

func tryStartDev(t *testing.T, last bool, args ...string) (*devCluster, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(shoalBin, append([]string{"dev", "--dir", dir, "--base-port", "0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devCluster{cmd: cmd, log: &syncBuffer{}}
	cmd.Stderr = d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("shoal dev did not stop on SIGTERM")
		}
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.log.Write([]byte(sc.Text() + "\n"))
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("shoal dev exited before ready:\n%s", d.log.String())
			}
			name, addr, _ := strings.Cut(l, ": ")
			switch name {
			case "exited":
				if !last {
					cmd.Process.Signal(syscall.SIGTERM)
					go func() {
						for range lines {
						}
					}()
					return nil, l
				}
			case "manager":
				d.manager = strings.TrimPrefix(addr, "http://")
			case "dashboard":
				d.dash = addr
			case "node":
				d.nodes = append(d.nodes, addr)
			case "proxy-resp":
				d.proxy = addr
			case "proxy-memcached":
				d.proxyMC = addr
			case "proxy-admin":
				d.admin = addr
			case "node-admin":
				d.nodeAdmin = append(d.nodeAdmin, addr)
			case "ready":
				go func() {
					for range lines {
					}
				}()
				return d, ""
			}
		case <-timeout:
			t.Fatalf("shoal dev not ready:\n%s", d.log.String())
		}
	}
}

type ctlStatus struct {
	Healthy bool `json:"healthy"`
	Shards  []struct {
		ID       int      `json:"id"`
		Epoch    uint64   `json:"epoch"`
		Primary  string   `json:"primary"`
		Replicas []string `json:"replicas"`
		Slots    int      `json:"slots"`
	} `json:"shards"`
}

func (d *devCluster) ctl(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(shoalBin, append([]string{"ctl", "--manager", d.manager}, args...)...).Output()
}

func (d *devCluster) status(t *testing.T) ctlStatus {
	t.Helper()
	out, err := d.ctl(t, "status", "--json")
	if err != nil {
		t.Fatalf("ctl status: %v", err)
	}
	var st ctlStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("ctl status --json: %v\n%s", err, out)
	}
	return st
}

func pidOf(addr string) int {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// TestDevClusterChaos: shoal dev with 3 shards × (primary + replica),
// sync-replicas 1; writers through go-redis ClusterClient record every
// acknowledged write while a random primary is killed with kill -9 every
// few seconds (shoal dev --restart brings it back). At the end every
// acknowledged write is present, and the history of a few registers is
// linearizable (porcupine).
func TestDevClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test takes ~40 s")
	}
	d := startDev(t, "--shards", "3", "--replicas", "1", "--sync-replicas", "1", "--restart")
	st := d.status(t)
	if len(st.Shards) != 3 || len(d.nodes) != 6 {
		t.Fatalf("status: %+v, nodes %v", st, d.nodes)
	}
	total := 0
	for _, s := range st.Shards {
		total += s.Slots
		if len(s.Replicas) != 1 || s.Primary == "" {
			t.Fatalf("shard %+v", s)
		}
	}
	if total != 16384 {
		t.Fatalf("slots %d", total)
	}
	checkDashboard(t, d, 3, 6)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: d.nodes, MaxRetries: 12, MaxRedirects: 8,
		MinRetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 300 * time.Millisecond,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second})
	defer cc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]string{}
	var attempts, fails int
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("chaos:%d:%d", w, i), strconv.Itoa(i)
				err := cc.Set(context.Background(), k, v, 0).Err()
				mu.Lock()
				attempts++
				if err == nil {
					acked[k] = v
				} else {
					fails++
				}
				mu.Unlock()
			}
		}()
	}
	// Registers for the linearizability check: SET/GET on 3 keys, each
	// operation sent once (a cluster client's transparent retry of a
	// write whose reply was lost could apply it twice, around another
	// client's write: an anomaly of the retry, not of the store). A write
	// whose outcome is unknown stays open to the end of the history.
	var hmu sync.Mutex
	var history []porcupine.Operation
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := &onceClient{addrs: d.nodes}
			defer rc.close()
			r := rand.New(rand.NewSource(int64(w)))
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("reg{%d}", r.Intn(3))
				in := regInput{key: key, write: r.Intn(2) == 0, value: fmt.Sprintf("%d-%d", w, i)}
				start := time.Now().UnixNano()
				var out regOutput
				var err error
				if in.write {
					err = rc.do(func(c *redis.Client) error { return c.Set(context.Background(), key, in.value, 0).Err() })
				} else {
					err = rc.do(func(c *redis.Client) error {
						v, err := c.Get(context.Background(), key).Result()
						if err == redis.Nil {
							v, err = "", nil
						}
						out.value = v
						return err
					})
				}
				end := time.Now().UnixNano()
				if err != nil {
					if !in.write {
						continue // a failed read has no effect
					}
					// A failed write may or may not have happened: it
					// stays open until the end of the history.
					out.unknown = true
					end = 1<<62 + int64(i)
				}
				hmu.Lock()
				history = append(history, porcupine.Operation{ClientId: w, Input: in, Call: start, Output: out, Return: end})
				hmu.Unlock()
			}
		}()
	}

	var failovers []time.Duration
	for round := 0; round < 3; round++ {
		time.Sleep(3 * time.Second)
		st := d.status(t)
		s := st.Shards[rand.Intn(len(st.Shards))]
		pid := pidOf(s.Primary)
		if pid == 0 {
			continue
		}
		killed := time.Now()
		syscall.Kill(pid, syscall.SIGKILL)
		// Failover time: until the shard accepts writes again.
		deadline := time.Now().Add(15 * time.Second)
		for {
			cur := d.status(t)
			var np string
			for _, x := range cur.Shards {
				if x.ID == s.ID {
					np = x.Primary
				}
			}
			// The shard is back when its primary in the map (the promoted
			// replica, or the killed node itself if shoal dev restarted it
			// before the lease ran out and it lost nothing) takes writes.
			if np != "" {
				if writableOn(np) {
					failovers = append(failovers, time.Since(killed))
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %d not failed over in 15 s\n%s", s.ID, d.log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()

	slices.Sort(failovers)
	if len(failovers) > 0 {
		t.Logf("failovers: %d, median %v, max %v; writes attempted %d, failed %d",
			len(failovers), failovers[len(failovers)/2], failovers[len(failovers)-1], attempts, fails)
	}
	// Every acknowledged write is there.
	lost := 0
	for k, v := range acked {
		got, err := cc.Get(context.Background(), k).Result()
		if err != nil || got != v {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged %s=%s, now %q (%v)", k, v, got, err)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 30*time.Second)
	if res == porcupine.Illegal {
		if f := os.Getenv("SHOAL_CHAOS_DUMP"); f != "" {
			var b strings.Builder
			for _, op := range history {
				in, out := op.Input.(regInput), op.Output.(regOutput)
				fmt.Fprintf(&b, "%d %d %d %s %v %q %q %v\n", op.ClientId, op.Call, op.Return, in.key, in.write, in.value, out.value, out.unknown)
			}
			os.WriteFile(f, []byte(b.String()), 0o644)
			porcupine.VisualizePath(registerModel, info, f+".html")
		}
		t.Fatal("register history is not linearizable")
	}
	t.Logf("%d acknowledged writes checked, %d register operations linearizable (%v)", len(acked), len(history), res)
}

// onceClient sends each command once to the node it believes serves the
// key: it follows -MOVED and retries -TRYAGAIN/-CLUSTERDOWN (the command
// did not run), and reports any other failure (it may have run), then
// moves on to another node for the next command.
type onceClient struct {
	addrs []string
	cur   int
	c     *redis.Client
}

func (o *onceClient) client() *redis.Client {
	if o.c == nil {
		o.c = redis.NewClient(&redis.Options{Addr: o.addrs[o.cur%len(o.addrs)], MaxRetries: -1,
			DialTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second, PoolSize: 1})
	}
	return o.c
}

func (o *onceClient) close() {
	if o.c != nil {
		o.c.Close()
		o.c = nil
	}
}

func (o *onceClient) switchTo(addr string) {
	o.close()
	for i, a := range o.addrs {
		if a == addr {
			o.cur = i
			return
		}
	}
	o.addrs = append(o.addrs, addr)
	o.cur = len(o.addrs) - 1
}

func (o *onceClient) do(fn func(*redis.Client) error) error {
	for attempt := 0; attempt < 50; attempt++ {
		err := fn(o.client())
		if err == nil {
			return nil
		}
		msg := err.Error()
		switch {
		case strings.HasPrefix(msg, "MOVED "):
			f := strings.Fields(msg)
			o.switchTo(f[len(f)-1])
		case strings.HasPrefix(msg, "TRYAGAIN"), strings.HasPrefix(msg, "CLUSTERDOWN"):
			time.Sleep(20 * time.Millisecond)
		default:
			o.close()
			o.cur++
			return err
		}
	}
	return errors.New("too many redirections")
}

// writableOn reports whether the node at addr accepts a write to one of
// its own slots (keys it redirects are skipped).
func writableOn(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	for i := 0; i < 1000; i++ {
		err := c.Set(context.Background(), "probe:"+strconv.Itoa(i), "v", 0).Err()
		if err == nil {
			return true
		}
		if !strings.HasPrefix(err.Error(), "MOVED") {
			return false
		}
	}
	return false
}

type regInput struct {
	key   string
	write bool
	value string
}

type regOutput struct {
	value   string
	unknown bool
}

// registerModel: a map of string registers, partitioned by key.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if by[k] == nil {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(regInput), output.(regOutput)
		if in.write {
			return true, in.value
		}
		return out.value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		if in.write {
			return "set " + in.key + "=" + in.value
		}
		return "get " + in.key + " -> " + out.value
	},
}

// checkDashboard: the dashboard URL shoal dev prints serves the page, and
// its data call shows the cluster (the page itself is tested in a browser
// in internal/manager).
func checkDashboard(t *testing.T, d *devCluster, shards, nodes int) {
	t.Helper()
	if d.dash != "http://"+d.manager+"/dashboard/" {
		t.Fatalf("shoal dev printed dashboard %q, want http://%s/dashboard/", d.dash, d.manager)
	}
	resp, err := http.Get(d.dash)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<title>Shoal dashboard</title>") {
		t.Fatalf("GET %s: %d %.200s", d.dash, resp.StatusCode, page)
	}
	resp, err = http.Get("http://" + d.manager + "/v1/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dash manager.Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&dash); err != nil {
		t.Fatalf("GET /v1/dashboard: %v", err)
	}
	if len(dash.Status.Shards) != shards || len(dash.Status.Nodes) != nodes || len(dash.Heat) == 0 {
		t.Fatalf("GET /v1/dashboard: %d shards, %d nodes, %d heat runs; want %d shards, %d nodes", len(dash.Status.Shards),
			len(dash.Status.Nodes), len(dash.Heat), shards, nodes)
	}
}
