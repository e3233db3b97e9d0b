package manager_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"shoal/internal/cluster"
	"shoal/internal/config"
	"shoal/internal/manager"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// The dashboard in a real browser: headless Chromium, driven over the
// DevTools protocol, against an in-process cluster (one manager, two
// shards of a primary and a replica). Screenshots of the main views go
// to $SHOAL_ARTIFACTS/dashboard (or a temp dir).

// chromium returns the browser to drive: $SHOAL_CHROMIUM, else the first
// of the usual names on $PATH.
func chromium() string {
	if p := os.Getenv("SHOAL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

type dashNode struct {
	id, addr string
	srv      *server.Server
}

// dashCluster starts a manager and shards × (1 + replicas) storage nodes
// on free loopback ports, and creates the shards.
func dashCluster(t *testing.T, shards, replicas int, mcfg func(*manager.Config)) (*manager.Manager, *manager.Client, map[string]*dashNode) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := manager.Config{ID: "m1", RaftAddr: "127.0.0.1:" + strconv.Itoa(tu.FreePort(t)), HTTPAddr: "127.0.0.1:0",
		Dir: t.TempDir(), Bootstrap: true, Logger: quiet}
	mcfg(&cfg)
	m, err := manager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mc := manager.NewClient(m.HTTPAddr())
	waitFor(t, 20*time.Second, "the manager leads", func() bool { _, err := mc.Status(context.Background()); return err == nil })
	if _, err := mc.SetConfig(context.Background(), "replicas_per_shard", replicas); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*dashNode{}
	for i := 0; i < shards*(1+replicas); i++ {
		n := startDashNode(t, m.HTTPAddr(), quiet)
		nodes[n.addr] = n
	}
	waitFor(t, 20*time.Second, "all nodes registered", func() bool {
		st, err := mc.Status(context.Background())
		return err == nil && len(st.Nodes) == len(nodes)
	})
	if _, err := mc.Create(context.Background(), shards); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a healthy cluster with synced replicas", func() bool {
		st, err := mc.Status(context.Background())
		if err != nil || !st.Healthy {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Alive || (n.Role == cluster.RoleReplica && !n.Synced) {
				return false
			}
		}
		return true
	})
	st, _ := mc.Status(context.Background())
	for _, n := range st.Nodes {
		nodes[n.Addr].id = n.ID
	}
	return m, mc, nodes
}

func startDashNode(t *testing.T, mgr string, log *slog.Logger) *dashNode {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port := tu.FreePort(t)
		cfg := config.Default()
		if err := cfg.ParseArgs([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--save", "",
			"--appendonly", "no", "--manager", mgr}); err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Start(ctx)
		cancel()
		if err != nil {
			if attempt < 5 { // the free port was taken meanwhile
				continue
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return &dashNode{addr: "127.0.0.1:" + strconv.Itoa(port), srv: srv}
	}
}

// quietRedis drops go-redis's log lines (dial errors to the killed primary).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDashboardInBrowser loads the dashboard in headless Chromium and
// checks that it shows the cluster, follows a failover live, and that a
// rebalance planned and confirmed on the page moves slots (with its
// progress shown while the moves are held half done).
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium()
	if chrome == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set SHOAL_CHROMIUM): the dashboard browser test needs one")
	}
	artifacts := t.TempDir()
	if dir := os.Getenv("SHOAL_ARTIFACTS"); dir != "" {
		artifacts = filepath.Join(dir, "dashboard")
		if err := os.MkdirAll(artifacts, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The migrator cuts over at most half of a batch's moves until release
	// is closed, so the page can be seen showing a half-full progress bar.
	var gate struct {
		sync.Mutex
		batch   int
		allowed map[int]bool
	}
	gate.allowed = map[int]bool{}
	release := make(chan struct{})
	m, mc, nodes := dashCluster(t, 2, 1, func(cfg *manager.Config) {
		cfg.HistoryInterval = 500 * time.Millisecond
		cfg.MoveGate = func(op string, slot int) bool {
			if op != cluster.OpMigrateCutover {
				return true
			}
			select {
			case <-release:
				return true
			default:
			}
			gate.Lock()
			defer gate.Unlock()
			if gate.allowed[slot] || len(gate.allowed) < gate.batch/2 {
				gate.allowed[slot] = true
				return true
			}
			return false
		}
	})
	base := "http://" + m.HTTPAddr()

	// A light, steady load through a cluster client, so the slot map and
	// the ops/s chart have something to show (errors during the failover
	// are expected and ignored).
	addrs := []string{}
	for a := range nodes {
		addrs = append(addrs, a)
	}
	redis.SetLogger(quietRedis{})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRedirects: 8, DialTimeout: time.Second, ReadTimeout: time.Second})
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var loadWG sync.WaitGroup
	loadWG.Add(1)
	go func() {
		defer loadWG.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			// Every 7th key of a few hot ones: an uneven heat map.
			key := fmt.Sprintf("k%d", i%500)
			if i%3 == 0 {
				key = fmt.Sprintf("hot%d", i%7)
			}
			rdb.Set(loadCtx, key, i, 0)
		}
	}()
	t.Cleanup(func() { stopLoad(); loadWG.Wait(); rdb.Close() })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string // console errors and warnings, exceptions, error log entries
	var authHeaders []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if ev.Request.Method == "POST" {
				path := strings.TrimPrefix(ev.Request.URL, base)
				authHeaders = append(authHeaders, path+" "+fmt.Sprint(ev.Request.Headers["Authorization"]))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	// run runs browser steps with a bound on each batch (the browser
	// itself lives as long as bctx).
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	shot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(what, js string, timeout time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, timeout+5*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
		if err != nil {
			// What the page showed instead, for the failure's reader.
			shot("failed")
			page, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			t.Fatalf("waiting for %s: %v; the page showed:\n%s", what, err, page)
		}
	}

	// 1. The overview: right counts, healthy, the slot map heated by the
	// load and a few history samples in the charts.
	run("open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#shards tbody tr.shard`)))
	poll("2 shards, 4 nodes, healthy", `document.querySelectorAll('#shards tbody tr.shard').length === 2 &&
		document.querySelectorAll('#nodes tbody tr.node').length === 4 && document.getElementById('health').textContent === 'healthy'`, 10*time.Second)
	if s, n := text("#sum-shards"), text("#sum-nodes"); s != "2" || n != "4" {
		t.Fatalf("summary: %s shards, %s nodes; want 2 and 4", s, n)
	}
	poll("slot load and history samples", `last !== null && last.heat.some((r) => r[3] > 0) && history !== null && history.samples.length >= 3 &&
		history.samples[history.samples.length-1].shards.some((s) => s.ops_per_sec > 0)`, 20*time.Second)
	// Hovering the slot map's last cell names slot 16383 and its owner.
	st, err := mc.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := st.Shards[len(st.Shards)-1]
	run("scroll to the slot map", chromedp.ScrollIntoView(chromedp.CSS("#heat")))
	ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
	xy, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.getElementById('heat').getBoundingClientRect();
		return [r.left + 127*4 + 2, r.top + 127*4 + 2]; })()`))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	run("hover the last slot", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, xy[0], xy[1]))
	poll("the slot's tooltip", fmt.Sprintf(`!document.getElementById('heat-tip').hidden &&
		document.getElementById('heat-tip').textContent.startsWith(%q)`, fmt.Sprintf("slot 16383 · shard %d (primary %s) · ", last.ID, last.Primary)), 5*time.Second)
	shot("overview")

	// 2. Kill the primary of shard 1: the page shows the failover.
	s1 := st.Shards[0]
	oldPrimary, newPrimary := s1.Primary, s1.Replicas[0]
	killed := time.Now()
	nodes[oldPrimary].srv.Close()
	poll("the failover of shard 1 on the page", fmt.Sprintf(`document.querySelector('#shards tr.shard[data-shard="%d"] td.primary').textContent === %q &&
		document.querySelector('#failovers tr.failover[data-shard="%d"]') !== null &&
		document.querySelector('#nodes tr.node[data-node="%s"]').classList.contains('down')`, s1.ID, newPrimary, s1.ID, nodes[oldPrimary].id), 15*time.Second)
	took := time.Since(killed)
	t.Logf("the page showed the failover %v after the kill", took)
	if took > 8*time.Second {
		t.Errorf("the page showed the failover only %v after the kill", took)
	}
	shot("failover")

	// 3. Rebalance from the page: give shard 2 twice the weight, plan on
	// the page (dry run), apply through the confirmation dialog.
	s2 := st.Shards[1]
	if err := mc.SetWeight(context.Background(), s2.ID, 2*s2.Weight); err != nil {
		t.Fatal(err)
	}
	const token = "s3cret-token"
	run("set the admin token", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Blur(chromedp.CSS("#token")))
	poll("the token in sessionStorage", fmt.Sprintf(`sessionStorage.getItem('shoal-admin-token') === %q`, token), 5*time.Second)
	run("plan a rebalance", chromedp.Click(chromedp.CSS("#rebalance")), chromedp.WaitVisible(chromedp.CSS("#confirm .plan")))
	planned, err := strconv.Atoi(text("#confirm .plan-moves"))
	if err != nil || planned == 0 {
		t.Fatalf("the dry run planned %q moves (%v): %s", text("#confirm .plan-moves"), err, text("#confirm-body"))
	}
	if plan, want := text("#confirm .plan"), fmt.Sprintf("shard %d → %d: %d slots", s1.ID, s2.ID, planned); !strings.Contains(plan, want) {
		t.Fatalf("the plan shown: %q, want %q in it", plan, want)
	}
	if mg := m.Map().Migrations; len(mg) != 0 {
		t.Fatalf("the dry run queued %d moves", len(mg))
	}
	shot("rebalance-plan")
	before := m.Map().Slots.Count(s2.ID)
	run("apply the rebalance", chromedp.Click(chromedp.CSS("#confirm-ok")))
	poll("the rebalance queued", `/Rebalance queued \d+ slot moves/.test(document.getElementById('message').textContent)`, 10*time.Second)
	msg := text("#message")
	queued, _ := strconv.Atoi(regexp.MustCompile(`queued (\d+) slot moves`).FindStringSubmatch(msg)[1])
	if queued != planned {
		t.Errorf("applied %d moves, the dry run planned %d", queued, planned)
	}
	poll("the moves queued on the page", fmt.Sprintf(`(() => { const g = document.querySelector('#moves .move[data-from="%d"][data-to="%d"] .count');
		return g !== null && g.textContent.startsWith('0 / %d slots'); })()`, s1.ID, s2.ID, queued), 10*time.Second)
	gate.Lock()
	gate.batch = queued
	gate.Unlock()
	half := queued / 2
	poll("the moves' progress bar at half", fmt.Sprintf(`(() => { const g = document.querySelector('#moves .move[data-from="%d"][data-to="%d"] .count');
		return g !== null && g.textContent.startsWith('%d / %d slots'); })()`, s1.ID, s2.ID, half, queued), 30*time.Second)
	shot("rebalance-moving")
	close(release)
	poll("the moves done and shard 2's slots counted", fmt.Sprintf(`document.querySelector('#moves .empty') !== null &&
		document.querySelector('#shards tr.shard[data-shard="%d"] td.slots').textContent === '%d'`, s2.ID, before+queued), 30*time.Second)
	if got := m.Map().Slots.Count(s2.ID); got != before+queued {
		t.Fatalf("shard %d owns %d slots after the rebalance, want %d", s2.ID, got, before+queued)
	}
	shot("rebalanced")

	// 4. A manual failover of shard 2 from the page.
	run("ask for a failover of shard 2", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#shards tr.shard[data-shard="%d"] button.failover`, s2.ID))),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	if title := text("#confirm-title"); title != fmt.Sprintf("Fail over shard %d?", s2.ID) {
		t.Fatalf("the failover dialog's title: %q", title)
	}
	run("confirm the failover", chromedp.Click(chromedp.CSS("#confirm-ok")))
	poll("shard 2 failed over on the page", fmt.Sprintf(`document.getElementById('message').textContent.startsWith('Shard %d failed over') &&
		document.querySelector('#shards tr.shard[data-shard="%d"] td.primary').textContent === %q`, s2.ID, s2.ID, s2.Replicas[0]), 20*time.Second)
	if p := m.Map().Shards[s2.ID].Primary; nodes[s2.Replicas[0]].id != p {
		t.Fatalf("shard %d's primary after the failover from the page: %s, want %s", s2.ID, p, nodes[s2.Replicas[0]].id)
	}

	// 5. A drain planned on the page and cancelled: nothing changes.
	epoch := m.Map().Epoch
	run("plan a drain of shard 1", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#shards tr.shard[data-shard="%d"] button.drain`, s1.ID))),
		chromedp.WaitVisible(chromedp.CSS("#confirm .plan")))
	if n, _ := strconv.Atoi(text("#confirm .plan-moves")); n != m.Map().Slots.Count(s1.ID) {
		t.Fatalf("the drain plan moves %d slots, shard %d has %d", n, s1.ID, m.Map().Slots.Count(s1.ID))
	}
	shot("drain-plan")
	run("cancel the drain", chromedp.Click(chromedp.CSS("#confirm-cancel")))
	poll("the dialog closed", `!document.getElementById('confirm').open`, 5*time.Second)
	if mp := m.Map(); mp.Epoch != epoch || len(mp.Migrations) != 0 || mp.Shards[s1.ID].Draining {
		t.Fatalf("a cancelled drain changed the map: epoch %d → %d, %d moves, draining %v", epoch, mp.Epoch, len(mp.Migrations), mp.Shards[s1.ID].Draining)
	}

	// 6. Autoscaling decisions: this cluster makes none, so the table's
	// rendering is fed one (the next poll redraws it from the manager).
	ctx, cancel = context.WithTimeout(bctx, 10*time.Second)
	row, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		renderDecisions([{time: new Date().toISOString(), action: 'scale-out', kind: 'ops', shard: 3, moves: 12,
			reason: 'ops/s per shard over 20000 for 30 s', error: 'provisioner exited 1'}], {enabled: true, reason: 'watching'});
		return document.querySelector('#decisions tr.decision').innerText; })()`))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scale-out (ops)", "3", "12", "ops/s per shard over 20000 for 30 s", "error: provisioner exited 1"} {
		if !strings.Contains(row, want) {
			t.Errorf("the decision row %q lacks %q", row, want)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	// Every action the page sent carried the token.
	wantPosts := []string{"/v1/rebalance", "/v1/rebalance", fmt.Sprintf("/v1/shards/%d/failover", s2.ID), fmt.Sprintf("/v1/shards/%d/drain", s1.ID)}
	if len(authHeaders) != len(wantPosts) {
		t.Errorf("the page sent %d POSTs: %q; want %q", len(authHeaders), authHeaders, wantPosts)
	}
	for i, h := range authHeaders {
		if i < len(wantPosts) && h != wantPosts[i]+" Bearer "+token {
			t.Errorf("POST %d: %q, want %q", i, h, wantPosts[i]+" Bearer "+token)
		}
	}
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	t.Logf("screenshots in %s", artifacts)
}
