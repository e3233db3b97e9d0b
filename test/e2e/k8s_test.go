package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestManagersLikeStatefulSet runs three `shoal manager` processes with
// the arguments of deploy/k8s/manager.yaml (one template: --bootstrap-id
// picks who bootstraps; advertised names instead of IPs), on loopback with
// "localhost" as the pods' DNS names: they form one Raft group known by
// those names, and a manager restarted with the same arguments (its
// --join ignored: it has state) rejoins and applies new entries.
func TestManagersLikeStatefulSet(t *testing.T) {
	type mgr struct {
		id                 string
		http, raft         int
		dir                string
		proc               *exec.Cmd
		done               chan struct{}
		log                *syncBuffer
		httpName, raftName string
	}
	ms := make([]*mgr, 3)
	for i := range ms {
		m := &mgr{id: fmt.Sprintf("shoal-manager-%d", i), http: freePort(t), raft: freePort(t), dir: t.TempDir()}
		m.httpName, m.raftName = "localhost:"+strconv.Itoa(m.http), "localhost:"+strconv.Itoa(m.raft)
		ms[i] = m
	}
	start := func(m *mgr) {
		t.Helper()
		m.log, m.done = &syncBuffer{}, make(chan struct{})
		m.proc = exec.Command(shoalBin, "manager",
			"--id="+m.id,
			"--bootstrap-id=shoal-manager-0",
			"--join="+ms[0].httpName,
			"--http-addr=127.0.0.1:"+strconv.Itoa(m.http),
			"--http-advertise="+m.httpName,
			"--raft-addr=127.0.0.1:"+strconv.Itoa(m.raft),
			"--raft-advertise="+m.raftName,
			"--dir="+m.dir)
		m.proc.Stdout, m.proc.Stderr = m.log, m.log
		if err := m.proc.Start(); err != nil {
			t.Fatal(err)
		}
		go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(m.proc, m.done)
	}
	stop := func(m *mgr) {
		select {
		case <-m.done:
			return
		default:
		}
		_ = m.proc.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			_ = m.proc.Process.Kill()
			<-m.done
		}
	}
	for _, m := range ms {
		start(m)
		t.Cleanup(func() {
			stop(m)
			if t.Failed() {
				t.Logf("%s log:\n%s", m.id, m.log.String())
			}
		})
	}
	type mapView struct {
		Managers map[string]string `json:"managers"`
		Settings struct {
			ReplicasPerShard int `json:"replicas_per_shard"`
		} `json:"settings"`
	}
	// readMap reads a manager's own map (served locally, not forwarded).
	readMap := func(m *mgr) (mapView, error) {
		var v mapView
		out, err := exec.Command(shoalBin, "ctl", "--manager", m.httpName, "map").Output()
		if err == nil {
			err = json.Unmarshal(out, &v)
		}
		return v, err
	}
	// poll: the processes have no event to wait on from outside.
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for delay := 10 * time.Millisecond; !cond(); delay = min(2*delay, 500*time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(delay)
		}
	}
	poll("three managers in every manager's map, by their names", func() bool {
		for _, m := range ms {
			v, err := readMap(m)
			if err != nil || len(v.Managers) != 3 {
				return false
			}
			for _, o := range ms {
				if v.Managers[o.id] != o.httpName {
					return false
				}
			}
		}
		return true
	})
	stop(ms[1])
	start(ms[1])
	out, err := exec.Command(shoalBin, "ctl", "--manager", ms[0].httpName+","+ms[2].httpName, "config", "set", "replicas_per_shard", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("config set: %v\n%s", err, out)
	}
	poll("the restarted manager to apply a new entry", func() bool {
		v, err := readMap(ms[1])
		return err == nil && v.Settings.ReplicasPerShard == 2 && len(v.Managers) == 3
	})
}
