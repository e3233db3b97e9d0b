package manager

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/internal/cluster"
)

// The EWMA: a report dt after the previous moves the average by
// 1 - exp(-dt/tau); hot slots no longer reported decay the same way and
// go below 0.01 ops/s.
func TestLoadTrackerEWMA(t *testing.T) {
	lt := loadTracker{tau: time.Second, shards: map[int]*shardEWMA{}}
	t0 := time.Unix(1000, 0)
	lt.observe(t0, 1, &cluster.Heartbeat{OpsPerSec: 100, UsedMemory: 1000, MaxMemory: 5000, SlotOps: [][2]float64{{7, 50}}})
	e := lt.shards[1]
	if e.ops != 100 || e.used != 1000 || e.max != 5000 || e.slots[7] != 50 {
		t.Fatalf("first report taken as is: %+v", e)
	}
	lt.observe(t0.Add(time.Second), 1, &cluster.Heartbeat{OpsPerSec: 200, UsedMemory: 1000, SlotOps: [][2]float64{{8, 10}}})
	a := 1 - math.Exp(-1)
	if math.Abs(e.ops-(100+a*100)) > 1e-9 || e.max != 0 {
		t.Fatalf("ops %v max %d", e.ops, e.max)
	}
	if math.Abs(e.slots[7]-50*(1-a)) > 1e-9 || e.slots[8] != 10 {
		t.Fatalf("slots %v", e.slots)
	}
	// A beat without SlotOps (null) leaves the slots alone.
	lt.observe(t0.Add(2*time.Second), 1, &cluster.Heartbeat{OpsPerSec: 200})
	if len(e.slots) != 2 {
		t.Fatalf("slots %v", e.slots)
	}
	// An empty report decays them all; long enough, they go.
	lt.observe(t0.Add(20*time.Second), 1, &cluster.Heartbeat{OpsPerSec: 0, SlotOps: [][2]float64{}})
	if len(e.slots) != 0 {
		t.Fatalf("slots left %v", e.slots)
	}
	// No smoothing: the last report.
	lt = loadTracker{tau: -1, shards: map[int]*shardEWMA{}}
	lt.observe(t0, 2, &cluster.Heartbeat{OpsPerSec: 100})
	lt.observe(t0.Add(time.Millisecond), 2, &cluster.Heartbeat{OpsPerSec: 7})
	if lt.shards[2].ops != 7 {
		t.Fatalf("unsmoothed ops %v", lt.shards[2].ops)
	}
}

// The provisioner runs with the documented environment, once at a time,
// and not again within a sustain period; its output and end are kept.
func TestProvisionerHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	opts := DefaultAutoscaleOptions()
	opts.ProvisionerCommand = `echo "$SHOAL_PROVISION_NODES|$SHOAL_PROVISION_REASON|$SHOAL_MANAGERS|$SHOAL_REPLICAS_PER_SHARD|$SHOAL_STANDBY_NODES" > ` + out + `; echo started`
	opts.ProvisionerTimeout = 10 * time.Second
	m, err := New(Config{ID: "m1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:0", Dir: t.TempDir(), Autoscale: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer close(m.stop)
	mp := cluster.NewMap()
	mp.Managers["m1"] = "10.0.0.1:7000"
	mp.Managers["m2"] = "10.0.0.2:7000"
	now := time.Now()
	step := cluster.Step{NeedStandby: 2, Kind: cluster.KindStandby, Reason: "scale-out due"}
	m.provision(now, mp, step)
	m.provision(now, mp, step) // running, or ran within the sustain period: not again
	m.wg.Wait()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "2|scale-out due|10.0.0.1:7000,10.0.0.2:7000|1|0" {
		t.Fatalf("environment %q", got)
	}
	st := m.ap.prov
	if st.Running || st.LastErr != "" || !st.NotUntil.After(now) {
		t.Fatalf("provisioner state %+v", st)
	}
	var runs, ends int
	for _, d := range m.ap.decisions {
		if d.Action == "provision" && strings.HasPrefix(d.Reason, "asking") {
			runs++
		}
		if d.Action == "provision" && strings.Contains(d.Reason, "finished") && strings.Contains(d.Reason, "started") {
			ends++
		}
	}
	if runs != 1 || ends != 1 {
		t.Fatalf("%d runs, %d ends: %+v", runs, ends, m.ap.decisions)
	}
	m.provision(now.Add(time.Second), mp, step)
	if m.ap.prov.Running {
		t.Fatal("ran again within the sustain period")
	}
	// A failing command is recorded as such.
	m.cfg.Autoscale.ProvisionerCommand = "exit 3"
	m.ap.prov.NotUntil = time.Time{}
	m.provision(now, mp, step)
	m.wg.Wait()
	if !strings.Contains(m.ap.prov.LastErr, "exit status 3") {
		t.Fatalf("last error %q", m.ap.prov.LastErr)
	}
}
