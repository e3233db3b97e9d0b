package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The autoscaler's decision, as pure state machines fed the time and the
// measured load: when to add a shard (scale-out) or drain one (scale-in).
// Carrying the decision out (taking standby nodes, add-shard, the moves
// of PlanAddShard / PlanDrain, running the provisioner hook) is the
// manager's job.

// Sustain reports when a condition has held continuously for Period.
// The zero time is "never"; a gap in observations does not break a run
// (the caller observes at its own pace), a false observation does.
type Sustain struct {
	Period time.Duration
	since  time.Time // start of the current run of true observations
	on     bool
}

// Observe records the condition at now and reports whether it has held
// since at least now-Period (at once if Period is 0).
func (s *Sustain) Observe(now time.Time, over bool) bool {
	if !over {
		s.on = false
		return false
	}
	if !s.on {
		s.on, s.since = true, now
	}
	return now.Sub(s.since) >= s.Period
}

// For returns how long the condition has held at now (0 if it does not).
func (s *Sustain) For(now time.Time) time.Duration {
	if !s.on {
		return 0
	}
	return now.Sub(s.since)
}

// Reset forgets the current run.
func (s *Sustain) Reset() { s.on = false }

// AutoscaleConfig holds the autoscaler's thresholds. Memory is the
// cluster's used/max memory (shards reporting a MaxMemory); ops is the
// mean ops/s per shard.
type AutoscaleConfig struct {
	ScaleOutMemFrac     float64 // scale out above this memory fraction...
	ScaleOutOpsPerShard float64 // ...or above this mean ops/s per shard
	ScaleInMemFrac      float64 // scale in below this memory fraction...
	ScaleInOpsPerShard  float64 // ...and below this mean ops/s per shard
	Sustain             time.Duration
	Cooldown            time.Duration // after any action, before the next
	MinShards           int
	MaxShards           int
}

// DefaultAutoscaleConfig: scale out at 75% memory or 50k ops/s per
// shard, in below 25% and 10k, both sustained 2 minutes, 10 minutes
// apart, 1 to 64 shards.
func DefaultAutoscaleConfig() AutoscaleConfig {
	return AutoscaleConfig{
		ScaleOutMemFrac: 0.75, ScaleOutOpsPerShard: 50000,
		ScaleInMemFrac: 0.25, ScaleInOpsPerShard: 10000,
		Sustain: 2 * time.Minute, Cooldown: 10 * time.Minute,
		MinShards: 1, MaxShards: 64,
	}
}

// Validate checks ranges and that scale-in sits below scale-out (else
// the autoscaler would flap).
func (c AutoscaleConfig) Validate() error {
	switch {
	case !(c.ScaleOutMemFrac > 0 && c.ScaleOutMemFrac <= 1):
		return errors.New("scale-out memory fraction must be in (0, 1]")
	case c.ScaleInMemFrac < 0 || c.ScaleInMemFrac >= c.ScaleOutMemFrac:
		return errors.New("scale-in memory fraction must be in [0, scale-out memory fraction)")
	case !(c.ScaleOutOpsPerShard > 0):
		return errors.New("scale-out ops/s per shard must be > 0")
	case c.ScaleInOpsPerShard < 0 || c.ScaleInOpsPerShard >= c.ScaleOutOpsPerShard:
		return errors.New("scale-in ops/s per shard must be in [0, scale-out ops/s per shard)")
	case c.Sustain < 0 || c.Cooldown < 0:
		return errors.New("sustain and cooldown must be >= 0")
	case c.MinShards < 1 || c.MaxShards < c.MinShards:
		return errors.New("need 1 <= min shards <= max shards")
	}
	return nil
}

// Autoscale actions.
const (
	ActionNone     = "none"
	ActionScaleOut = "scale-out"
	ActionScaleIn  = "scale-in"
)

// Decision is what the autoscaler wants now, and why in words (shoal ctl
// autoscale status).
type Decision struct {
	Action string // ActionNone, ActionScaleOut, ActionScaleIn
	Shard  int    // scale-in: the shard to drain (the least loaded)
	// NeedStandby > 0: scale-out is due but the pool lacks this many
	// nodes; the caller asks the provisioner for them.
	NeedStandby int
	Reason      string
}

// Autoscaler turns load observations into decisions. Not safe for
// concurrent use; one lives in the manager leader's loop (a new leader
// starts a new one: sustain periods restart, and the caller seeds the
// cooldown with Acted if it knows of a recent action).
type Autoscaler struct {
	cfg      AutoscaleConfig
	out, in  Sustain
	last     time.Time // last action (zero: none)
	lastWhat string
}

// NewAutoscaler returns an autoscaler with cfg (assumed valid).
func NewAutoscaler(cfg AutoscaleConfig) *Autoscaler {
	return &Autoscaler{cfg: cfg, out: Sustain{Period: cfg.Sustain}, in: Sustain{Period: cfg.Sustain}}
}

// Acted starts the cooldown at now: Decide calls it when it returns an
// action; the caller calls it again when that action (or a manual
// add-shard or drain) finishes, so the cooldown counts from the end.
func (a *Autoscaler) Acted(now time.Time, what string) {
	a.last, a.lastWhat = now, what
	a.out.Reset()
	a.in.Reset()
}

// Decide observes the cluster at now and decides. load must hold every
// shard of m (a shard without a report blocks any decision); standby is
// the number of idle nodes in the pool. A scale-out needs 1 +
// Settings.ReplicasPerShard of them.
func (a *Autoscaler) Decide(now time.Time, m *Map, load map[int]ShardLoad, standby int) Decision {
	ids := m.ShardIDs()
	none := func(format string, args ...any) Decision {
		return Decision{Action: ActionNone, Reason: fmt.Sprintf(format, args...)}
	}
	if len(ids) == 0 {
		a.out.Observe(now, false)
		a.in.Observe(now, false)
		return none("no shards yet")
	}
	var ops float64
	var used, limit int64
	for _, id := range ids {
		l, ok := load[id]
		if !ok {
			a.out.Observe(now, false)
			a.in.Observe(now, false)
			return none("no load report from shard %d yet", id)
		}
		ops += l.OpsPerSec
		if l.MaxMemory > 0 {
			used += l.UsedMemory
			limit += l.MaxMemory
		}
	}
	n := len(ids)
	perShard := ops / float64(n)
	memFrac := -1.0 // unknown: no shard reports maxmemory
	memText := "memory not compared (no maxmemory reported)"
	if limit > 0 {
		memFrac = float64(used) / float64(limit)
		memText = fmt.Sprintf("memory %.0f%%", 100*memFrac)
	}
	state := fmt.Sprintf("%d shards, %.0f ops/s per shard, %s", n, perShard, memText)
	c := a.cfg

	var outWhy []string
	if perShard > c.ScaleOutOpsPerShard {
		outWhy = append(outWhy, fmt.Sprintf("ops/s per shard above %.0f", c.ScaleOutOpsPerShard))
	}
	if memFrac >= 0 && memFrac > c.ScaleOutMemFrac {
		outWhy = append(outWhy, fmt.Sprintf("memory above %.0f%%", 100*c.ScaleOutMemFrac))
	}
	inOK := perShard < c.ScaleInOpsPerShard && (memFrac < 0 || memFrac < c.ScaleInMemFrac)
	outDue := a.out.Observe(now, len(outWhy) > 0)
	inDue := a.in.Observe(now, len(outWhy) == 0 && inOK)

	cooling := !a.last.IsZero() && now.Sub(a.last) < c.Cooldown
	coolText := ""
	if cooling {
		coolText = fmt.Sprintf("cooling down %s more after %s", (c.Cooldown - now.Sub(a.last)).Round(time.Second), a.lastWhat)
	}

	switch {
	case len(outWhy) > 0:
		why := fmt.Sprintf("%s: %s", state, strings.Join(outWhy, " and "))
		switch {
		case n >= c.MaxShards:
			return none("%s, but at max shards (%d)", why, c.MaxShards)
		case !outDue:
			return none("%s for %s of %s needed to scale out", why, a.out.For(now).Round(time.Second), c.Sustain)
		case cooling:
			return none("%s, scale-out due but %s", why, coolText)
		}
		need := 1 + m.Settings.ReplicasPerShard
		if standby < need {
			d := none("%s, scale-out due but the standby pool has %d nodes of %d needed (primary + %d replicas): waiting for the provisioner to register %d more",
				why, standby, need, m.Settings.ReplicasPerShard, need-standby)
			d.NeedStandby = need - standby
			return d
		}
		a.Acted(now, ActionScaleOut)
		return Decision{Action: ActionScaleOut, Reason: fmt.Sprintf("%s for %s: add a shard of %d standby nodes", why, c.Sustain, need)}

	case inOK:
		why := fmt.Sprintf("%s: below scale-in thresholds (%.0f ops/s per shard", state, c.ScaleInOpsPerShard)
		if memFrac >= 0 {
			why += fmt.Sprintf(", memory %.0f%%", 100*c.ScaleInMemFrac)
		}
		why += ")"
		if n <= c.MinShards {
			return none("%s, but at min shards (%d)", why, c.MinShards)
		}
		// The cluster one shard smaller must stay below scale-out, or
		// the next decision would undo this one.
		victim := leastLoaded(ids, load)
		afterOps := ops / float64(n-1)
		if afterOps > c.ScaleOutOpsPerShard {
			return none("%s, but without a shard it would carry %.0f ops/s per shard, above scale-out", why, afterOps)
		}
		if memFrac >= 0 {
			if rest := limit - load[victim].MaxMemory; rest <= 0 || float64(used)/float64(rest) > c.ScaleOutMemFrac {
				return none("%s, but without shard %d memory would pass the scale-out threshold", why, victim)
			}
		}
		switch {
		case !inDue:
			return none("%s for %s of %s needed to scale in", why, a.in.For(now).Round(time.Second), c.Sustain)
		case cooling:
			return none("%s, scale-in due but %s", why, coolText)
		}
		a.Acted(now, ActionScaleIn)
		return Decision{Action: ActionScaleIn, Shard: victim,
			Reason: fmt.Sprintf("%s for %s: drain shard %d (the least loaded: %.0f ops/s, %d bytes)", why, c.Sustain, victim, load[victim].OpsPerSec, load[victim].UsedMemory)}
	}
	if cooling {
		return none("%s: within thresholds; %s", state, coolText)
	}
	return none("%s: within thresholds", state)
}

// leastLoaded returns the shard with the fewest ops/s, then the least
// memory, then the highest id (the newest).
func leastLoaded(ids []int, load map[int]ShardLoad) int {
	s := append([]int(nil), ids...)
	sort.Slice(s, func(i, j int) bool {
		a, b := load[s[i]], load[s[j]]
		if a.OpsPerSec != b.OpsPerSec {
			return a.OpsPerSec < b.OpsPerSec
		}
		if a.UsedMemory != b.UsedMemory {
			return a.UsedMemory < b.UsedMemory
		}
		return s[i] > s[j]
	})
	return s[0]
}
