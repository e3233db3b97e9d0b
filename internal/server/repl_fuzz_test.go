package server

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"testing"

	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/persist"
)

// FuzzReplicaStream feeds arbitrary bytes to the replica's two parsers of
// its primary's stream: the framed snapshot of a full copy (loaded into
// an empty keyspace) and the records that follow (applied as a replica
// applies them). Nothing may panic or hang; bad input is an error.
func FuzzReplicaStream(f *testing.F) {
	var recs []byte
	recs = persist.AppendRecord(recs, 1, 1, persist.AppendEffect(nil, 5, []byte("set"), []byte("k"), []byte("v")))
	recs = persist.AppendRecord(recs, 2, 1, persist.AppendEffect(nil, -1, []byte("\x00flush")))
	recs = persist.AppendRecord(recs, 3, 2, append(persist.AppendEffect(nil, 0, []byte("lpush"), []byte("x"), []byte("1")),
		persist.AppendEffect(nil, 9, []byte("del"), []byte("y"))...))
	recs = persist.AppendRecord(recs, 0, 0, []byte{ctlEagerAcks})
	f.Add(recs)
	var snap bytes.Buffer
	db := engine.New(engine.Hooks{})
	k := []byte("key")
	db.SetString(db.Slot(0), k, []byte("val"), 0, false)
	_, _ = persist.Dump(db, &snap, persist.DumpOptions{Base: 7})
	var framed []byte
	framed = append(framed, byte(snap.Len()), byte(snap.Len()>>8), byte(snap.Len()>>16), 0)
	framed = append(framed, snap.Bytes()...)
	framed = append(framed, 0, 0, 0, 0)
	f.Add(append(framed, recs...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	s, err := New(config.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As a full copy, then records.
		db := engine.New(engine.Hooks{})
		br := bufio.NewReader(bytes.NewReader(data))
		cr := &chunkReader{r: br}
		if _, err := persist.Load(db, cr, persist.LoadOptions{KeepExpired: true}); err == nil {
			_ = cr.drain()
		}
		// As records only.
		br = bufio.NewReader(bytes.NewReader(data))
		rs := &replayState{cl: s.replayClient(), live: true}
		var rec []byte
		hdr := make([]byte, persist.RecordHeaderLen)
		for i := 0; i < 1000; i++ {
			var lsn uint64
			var payload []byte
			var err error
			if rec, lsn, payload, err = readStreamRecord(br, rec, hdr); err != nil {
				return
			}
			if lsn == 0 {
				continue
			}
			_ = s.applyRecord(rs, lsn, payload)
		}
	})
}
