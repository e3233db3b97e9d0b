package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"shoal/internal/manager"
)

// runDev is `shoal dev`: a whole cluster on 127.0.0.1 as child processes
// of this binary: one manager and shards × (1 + replicas) storage nodes.
// It prints one "name: address" line per endpoint, then "ready"; SIGINT
// or SIGTERM stops every child.
func runDev(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", "shoal-dev", "data directory (one subdirectory and log per process)")
	base := fs.Int("base-port", 7000, "first port: manager HTTP = base, Raft = base+1, nodes from base+10, then the proxy (0: any free ports)")
	shards := fs.Int("shards", 3, "number of shards")
	replicas := fs.Int("replicas", 1, "replicas per shard")
	syncReplicas := fs.Int("sync-replicas", 0, "replicas that must have a write before it is acknowledged")
	restart := fs.Bool("restart", false, "restart a child that exits (default: leave it dead, to watch failover)")
	memcached := fs.Bool("memcached", true, "give every node a memcached port too")
	aof := fs.Bool("appendonly", true, "storage nodes keep an append-only log (appendfsync everysec)")
	standby := fs.Int("standby", 0, "extra storage nodes started idle in the standby pool (add-shard with no nodes, autoscaling take them)")
	autoscale := fs.Bool("autoscale", false, "run the manager with --autoscale")
	mgrFlags := fs.String("manager-flags", "", "more flags for the manager, space-separated (e.g. \"--scale-out-ops 20000 --autoscale-sustain 30s\")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *shards < 1 || *replicas < 0 || *syncReplicas < 0 || *syncReplicas > *replicas || *standby < 0 {
		return errors.New("need --shards >= 1, --replicas >= 0, --standby >= 0 and --sync-replicas <= --replicas")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	absDir, _ := filepath.Abs(*dir)
	n := *shards * (1 + *replicas)
	all := n + *standby // shard nodes, then standby nodes
	// manager ×2, nodes ×2, proxy RESP + memcached + admin, nodes' admin
	// (last: the earlier ports stay where they were before nodes had one).
	ports, err := devPorts(*base, 2+2*all+3+all)
	if err != nil {
		return err
	}
	mgrHTTP := "127.0.0.1:" + strconv.Itoa(ports[0])
	d := &devCluster{exe: exe, dir: absDir, restart: *restart, out: out, quit: make(chan struct{})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer d.stopAll()

	margs := []string{"manager", "--id", "m1", "--bootstrap", "--http-addr", mgrHTTP,
		"--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[1]), "--dir", filepath.Join(absDir, "manager")}
	if *autoscale {
		margs = append(margs, "--autoscale")
	}
	margs = append(margs, strings.Fields(*mgrFlags)...)
	d.start("manager", margs...)
	c := manager.NewClient(mgrHTTP)
	c.Retry = 30 * time.Second
	if _, err := c.Status(ctx); err != nil {
		return fmt.Errorf("manager did not come up (see %s): %w", filepath.Join(absDir, "manager.log"), err)
	}
	mp, err := c.Map(ctx, 0, 0)
	if err != nil {
		return err
	}
	fresh := len(mp.Shards) == 0
	if fresh {
		for k, v := range map[string]int{"replicas_per_shard": *replicas, "sync_replicas": *syncReplicas} {
			if _, err := c.SetConfig(ctx, k, v); err != nil {
				return err
			}
		}
	}
	var nodeAddrs, standbyAddrs, nodeAdmins []string
	for i := 0; i < all; i++ {
		port := ports[2+i]
		name := fmt.Sprintf("node-%d", i+1)
		ndir := filepath.Join(absDir, name)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return err
		}
		args := []string{"server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", ndir,
			"--manager", mgrHTTP, "--appendonly", map[bool]string{true: "yes", false: "no"}[*aof], "--save", ""}
		if *memcached {
			args = append(args, "--memcached-port", strconv.Itoa(ports[2+all+i]))
		}
		adminPort := ports[2+2*all+3+i]
		args = append(args, "--admin-port", strconv.Itoa(adminPort))
		nodeAdmins = append(nodeAdmins, "127.0.0.1:"+strconv.Itoa(adminPort))
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if i >= n {
			// Registered as standby: create does not take them.
			args = append(args, "--standby")
			standbyAddrs = append(standbyAddrs, addr)
		} else {
			nodeAddrs = append(nodeAddrs, addr)
		}
		d.start(name, args...)
	}
	// Wait for every node to register, make the shards on a fresh
	// cluster, then wait until every shard has its primary and synced
	// replicas.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err == nil && len(st.Nodes) >= all {
			if fresh && len(st.Shards) == 0 {
				if _, err := c.Create(ctx, *shards); err != nil {
					return err
				}
				continue
			}
			if devReady(st, *replicas) && devPoolReady(st, standbyAddrs) {
				break
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ready after 60 s (logs in %s)", absDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The proxy starts once the cluster is up (it needs a map) and is
	// ready when its port answers.
	proxyResp := "127.0.0.1:" + strconv.Itoa(ports[2+2*all])
	proxyMC := "127.0.0.1:" + strconv.Itoa(ports[2+2*all+1])
	proxyAdmin := "127.0.0.1:" + strconv.Itoa(ports[2+2*all+2])
	pargs := []string{"proxy", "--manager", mgrHTTP, "--port", strconv.Itoa(ports[2+2*all]), "--bind", "127.0.0.1", "--admin-port", strconv.Itoa(ports[2+2*all+2])}
	if *memcached {
		pargs = append(pargs, "--memcached-port", strconv.Itoa(ports[2+2*all+1]))
	}
	d.start("proxy", pargs...)
	for {
		cn, err := net.DialTimeout("tcp", proxyResp, time.Second)
		if err == nil {
			cn.Close()
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy not ready after 60 s (log in %s)", filepath.Join(absDir, "proxy.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(out, "manager: http://%s\n", mgrHTTP)
	fmt.Fprintf(out, "dashboard: http://%s/dashboard/\n", mgrHTTP)
	for _, a := range nodeAddrs {
		fmt.Fprintf(out, "node: %s\n", a)
	}
	for _, a := range standbyAddrs {
		fmt.Fprintf(out, "standby: %s\n", a)
	}
	fmt.Fprintf(out, "proxy-resp: %s\n", proxyResp)
	if *memcached {
		fmt.Fprintf(out, "proxy-memcached: %s\n", proxyMC)
	}
	fmt.Fprintf(out, "proxy-admin: http://%s\n", proxyAdmin)
	// The nodes' admin endpoints, in the order of the node: and
	// standby: lines (the manager serves /metrics on its own address).
	for _, a := range nodeAdmins {
		fmt.Fprintf(out, "node-admin: http://%s\n", a)
	}
	fmt.Fprintf(out, "dir: %s\n", absDir)
	fmt.Fprintln(out, "ready")
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return nil
}

// devReady: every shard has a primary heard from and its replicas synced.
func devReady(st *manager.Status, replicas int) bool {
	alive := map[string]manager.NodeStatus{}
	for _, n := range st.Nodes {
		alive[n.ID] = n
	}
	if len(st.Shards) == 0 || st.Unowned > 0 {
		return false
	}
	for _, s := range st.Shards {
		p := alive[s.PrimaryID]
		if !p.Alive || p.Role != "primary" || len(s.ReplicaIDs) < replicas {
			return false
		}
		for _, r := range s.ReplicaIDs {
			if n := alive[r]; !n.Alive || !n.Synced {
				return false
			}
		}
	}
	return true
}

// devPoolReady: every standby node is alive (the restarted cluster may
// have put it in a shard since: then it need only be alive).
func devPoolReady(st *manager.Status, addrs []string) bool {
	alive := map[string]bool{}
	for _, n := range st.Nodes {
		alive[n.Addr] = n.Alive
	}
	for _, a := range addrs {
		if !alive[a] {
			return false
		}
	}
	return true
}

// devPorts returns n ports: base, base+1, then base+10... (base 0: free
// ports the kernel picks).
func devPorts(base, n int) ([]int, error) {
	out := make([]int, 0, n)
	if base == 0 {
		var lns []net.Listener
		defer func() {
			for _, l := range lns {
				l.Close()
			}
		}()
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			lns = append(lns, l)
			out = append(out, l.Addr().(*net.TCPAddr).Port)
		}
		return out, nil
	}
	out = append(out, base, base+1)
	for i := 0; len(out) < n; i++ {
		out = append(out, base+10+i)
	}
	for _, p := range out {
		if p > 65535 {
			return nil, fmt.Errorf("port %d out of range (lower --base-port)", p)
		}
	}
	return out, nil
}

type devCluster struct {
	exe     string
	dir     string
	restart bool
	out     io.Writer

	mu    sync.Mutex
	procs []*exec.Cmd
	quit  chan struct{}
	wg    sync.WaitGroup
}

// start runs a child with its output in dir/name.log and watches it.
func (d *devCluster) start(name string, args ...string) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			logf, err := os.OpenFile(filepath.Join(d.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				fmt.Fprintf(d.out, "%s: %v\n", name, err)
				return
			}
			cmd := exec.Command(d.exe, args...)
			cmd.Stdout, cmd.Stderr = logf, logf
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			if err := cmd.Start(); err != nil {
				logf.Close()
				fmt.Fprintf(d.out, "%s: %v\n", name, err)
				return
			}
			d.mu.Lock()
			d.procs = append(d.procs, cmd)
			d.mu.Unlock()
			err = cmd.Wait()
			logf.Close()
			select {
			case <-d.quit:
				return
			default:
			}
			fmt.Fprintf(d.out, "exited: %s (%v)\n", name, err)
			if !d.restart {
				return
			}
			select {
			case <-d.quit:
				return
			case <-time.After(time.Second):
			}
			fmt.Fprintf(d.out, "restarting: %s\n", name)
		}
	}()
}

// stopAll sends SIGTERM to every child and waits (SIGKILL after 10 s).
func (d *devCluster) stopAll() {
	close(d.quit)
	d.mu.Lock()
	for _, p := range d.procs {
		if p.Process != nil {
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.mu.Lock()
		for _, p := range d.procs {
			if p.Process != nil {
				p.Process.Kill()
			}
		}
		d.mu.Unlock()
		<-done
	}
}
