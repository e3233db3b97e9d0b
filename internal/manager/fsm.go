package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"shoal/internal/cluster"
)

// fsm is the Raft state machine: the cluster map. Apply builds the next
// map from a copy of the current one, so readers hold an immutable map
// without locking.
type fsm struct {
	cur atomic.Pointer[cluster.Map]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the map changes
}

func newFSM() *fsm {
	f := &fsm{changed: make(chan struct{})}
	f.cur.Store(cluster.NewMap())
	return f
}

// current returns the map (immutable: never modify it).
func (f *fsm) current() *cluster.Map { return f.cur.Load() }

func (f *fsm) publish(m *cluster.Map) {
	f.cur.Store(m)
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// next returns a channel that is closed at the map's next change.
func (f *fsm) next() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// wait returns the map once its epoch is past after, or the current one
// when ctx ends.
func (f *fsm) wait(ctx context.Context, after uint64) *cluster.Map {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if m := f.current(); m.Epoch > after {
			return m
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return f.current()
		}
	}
}

// Apply applies one log entry; the returned value is nil or the error
// that refused the command (the proposer reads it from the future).
func (f *fsm) Apply(l *raft.Log) any {
	var c cluster.Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("bad log entry %d: %w", l.Index, err)
	}
	next := f.current().Clone()
	if err := next.Apply(c); err != nil {
		return err
	}
	f.publish(next)
	return nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	b, err := json.Marshal(f.current())
	if err != nil {
		return nil, err
	}
	return mapSnapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := cluster.NewMap()
	if err := json.NewDecoder(rc).Decode(m); err != nil {
		return fmt.Errorf("restore map snapshot: %w", err)
	}
	f.publish(m)
	return nil
}

type mapSnapshot []byte

func (s mapSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s mapSnapshot) Release() {}
