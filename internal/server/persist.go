package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shoal/internal/cluster"
	"shoal/internal/command"
	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/persist"
)

// Snapshots: SAVE, BGSAVE, the save policy (evaluated by the cron), the
// load at start-up (clients get -LOADING meanwhile), DEBUG RELOAD and the
// INFO persistence fields. The format and the dump itself are in
// internal/persist.
//
// Goroutines: a BGSAVE runs on its own goroutine (at most one, tracked by
// bgWG and waited for by Close). SAVE runs on the caller's event loop.
// Saves of any kind are serialised by saveMu, so a SHUTDOWN save waits
// for a running BGSAVE instead of racing it to the rename.

func init() {
	register("save", cmdSave)
	register("bgsave", cmdBgsave)
	register("bgrewriteaof", cmdBgrewriteaof)
}

// cmdBgrewriteaof is BGREWRITEAOF: a snapshot, after which the log is
// truncated (the log's records before it are in the snapshot).
func cmdBgrewriteaof(c *Ctx) {
	if c.srv.aof.Load() == nil {
		// Redis rewrites even with appendonly off; here the snapshot is
		// the whole state, so this is a BGSAVE.
		c.srv.log.Info("BGREWRITEAOF with appendonly off: taking a snapshot")
	}
	if c.srv.startBgsave("BGREWRITEAOF") {
		c.w.Simple("Background append only file rewriting started")
		return
	}
	c.srv.persist.rewriteScheduled.Store(true)
	c.w.Simple("Background append only file rewriting scheduled")
}

const errLoading = "LOADING Redis is loading the dataset in memory"

// bgsaveRetryDelay is how long the policy waits after a failed save
// before trying again (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const bgsaveRetryDelay = 5 * time.Second

type persistState struct {
	saveMu sync.Mutex // held for the whole of any save

	bgRunning   atomic.Bool
	bgScheduled atomic.Bool  // BGSAVE SCHEDULE while one was running
	bgStart     atomic.Int64 // unix ms the running BGSAVE started
	bgWG        sync.WaitGroup

	lastSave     atomic.Int64 // unix s of the last successful save (or start-up)
	lastTry      atomic.Int64 // unix ms of the last save attempt
	lastFailed   atomic.Bool
	lastBgSecs   atomic.Int64 // duration of the last BGSAVE, -1 = none yet
	saves        atomic.Int64
	dirtyBase    atomic.Int64 // write-command count when the last successful save started
	lastLoadKeys atomic.Int64
	lastLoadExp  atomic.Int64

	loading     atomic.Bool
	loadStart   atomic.Int64 // unix s
	loadTotal   atomic.Int64 // file size
	loadedBytes atomic.Int64
	keyDelay    atomic.Int64 // key-load-delay in µs (test hook)

	stopWrites       atomic.Bool   // stop-writes-on-bgsave-error is refusing writes
	stopMu           sync.Mutex    // serialises updateStopWrites (saves, CONFIG SET)
	lastLSN          atomic.Uint64 // last log sequence number at recovery (the snapshot base with the log off)
	exact            atomic.Bool   // every slot holds exactly the records up to lastLSN (a replica can resume from it)
	rewriteBase      atomic.Int64  // log + snapshot bytes after the last rewrite
	rewrites         atomic.Int64
	rewriteScheduled atomic.Bool

	writeIdxOnce sync.Once
	writeIdx     []int // indexes into the stat shards of write commands
}

// refuseWhileLoading is the dispatcher's check for a client that connected
// during the start-up load. Clients connected afterwards never get here:
// the hot path only tests the client's own flag.
func (s *Server) refuseWhileLoading(cl *Client, d *cmdDef, args [][]byte) bool {
	if !s.persist.loading.Load() {
		cl.loadGate = false
		return false
	}
	if d.spec.Flags&command.Loading != 0 {
		return false
	}
	if s.clusterMode {
		// A key this node does not serve is redirected even while it
		// loads (Redis Cluster checks before -LOADING).
		var keyBuf, slotBuf [16]int
		if _, _, ok := s.routeCommand(cl, d, args, d.spec.KeyIndexes(args, keyBuf[:0]), -1, slotBuf[:0]); !ok {
			cl.flagMultiError()
			return true
		}
	}
	cl.w.Error(errLoading)
	cl.flagMultiError()
	return true
}

// dirty is rdb_changes_since_last_save: write commands run since the last
// successful save started. It reads the per-loop command counters (no
// extra work on the command path).
func (s *Server) dirty() int64 { return s.rawWrites() - s.persist.dirtyBase.Load() }

func (s *Server) rawWrites() int64 {
	p := &s.persist
	p.writeIdxOnce.Do(func() {
		initDefs()
		for _, d := range defs {
			if d.spec.Flags&command.Write != 0 {
				p.writeIdx = append(p.writeIdx, d.idx)
			}
		}
	})
	var n int64
	s.shardsMu.Lock()
	for _, sh := range s.shards {
		for _, i := range p.writeIdx {
			n += sh.cmd[i].calls()
		}
		// Memcached writes count as changes too.
		for _, i := range []int{mcCmdSet, mcCmdTouch, mcCmdFlush, mcDeleteHits, mcIncrHits, mcDecrHits, mcCasHits} {
			n += sh.mc[i].Load()
		}
	}
	s.shardsMu.Unlock()
	return n
}

// snapshotPath is dir/dbfilename.
func (s *Server) snapshotPath() string { return s.cfg.SnapshotPath() }

// save writes a snapshot now (waiting for a running one to finish first).
// With the log on it first starts a new log segment; once the snapshot is
// durable, the older segments (all their records are in it) are removed.
// With the log off every segment is removed (the snapshot has it all).
func (s *Server) save(why string) error {
	p := &s.persist
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	path := s.snapshotPath()
	base := s.rawWrites()
	p.lastTry.Store(time.Now().UnixMilli())
	fail := func(err error) error {
		p.lastFailed.Store(true)
		s.updateStopWrites()
		s.log.Error("snapshot failed", "why", why, "path", path, "err", err)
		return err
	}
	lg := s.aof.Load()
	logBase := s.lastLSN()
	seg := 0
	if lg != nil {
		var err error
		if seg, err = lg.Rotate(); err != nil {
			return fail(fmt.Errorf("start a new log segment: %w", err))
		}
		logBase = lg.Last()
	}
	st, err := persist.SaveFile(s.db, path, persist.DumpOptions{Base: logBase, FS: s.fsys,
		Mark: func(i int) uint64 { return s.db.Slot(i).LSN }})
	if err != nil {
		return fail(err)
	}
	p.lastFailed.Store(false)
	s.updateStopWrites()
	p.lastSave.Store(time.Now().Unix())
	p.dirtyBase.Store(base)
	p.saves.Add(1)
	if lg != nil {
		if err := lg.RemoveBefore(seg); err != nil {
			s.log.Warn("could not remove old log segments", "err", err)
		}
		p.rewriteBase.Store(lg.TotalSize() + st.Bytes)
		p.rewrites.Add(1)
	} else {
		s.removeLogSegments()
	}
	s.log.Info("DB saved on disk", "why", why, "path", path, "keys", st.Keys, "bytes", st.Bytes,
		"duration", st.Duration, "log_base", logBase)
	return nil
}

// updateStopWrites refreshes the stop-writes-on-bgsave-error refusal.
func (s *Server) updateStopWrites() {
	s.persist.stopMu.Lock()
	defer s.persist.stopMu.Unlock()
	var on bool
	s.cfg.Read(func(c *config.Config) { on = c.StopWritesOnBgsaveError && len(c.SavePoints) > 0 })
	s.persist.stopWrites.Store(on && s.persist.lastFailed.Load())
}

// startBgsave starts a background save unless one is running.
func (s *Server) startBgsave(why string) bool {
	p := &s.persist
	if !p.bgRunning.CompareAndSwap(false, true) {
		return false
	}
	start := time.Now()
	p.bgStart.Store(start.UnixMilli())
	p.bgWG.Add(1)
	go func() {
		defer p.bgWG.Done()
		_ = s.save(why)
		p.lastBgSecs.Store(int64(time.Since(start).Seconds() + 0.5))
		p.bgRunning.Store(false)
	}()
	return true
}

// persistCron runs the save policy; the cron calls it every 100 ms.
func (s *Server) persistCron() {
	p := &s.persist
	if p.loading.Load() || p.bgRunning.Load() {
		return
	}
	if p.bgScheduled.Swap(false) {
		s.startBgsave("scheduled BGSAVE")
		return
	}
	var pts []config.SavePoint
	var pct int
	var minSize int64
	s.cfg.Read(func(c *config.Config) { pts, pct, minSize = c.SavePoints, c.AutoAOFRewritePct, c.AutoAOFRewriteMin })
	now := time.Now()
	if p.lastFailed.Load() && now.UnixMilli()-p.lastTry.Load() < bgsaveRetryDelay.Milliseconds() {
		return
	}
	if lg := s.aof.Load(); lg != nil && pct > 0 {
		// auto-aof-rewrite: the log grew past min-size and by pct percent
		// of the data's size at the last rewrite.
		size := lg.TotalSize()
		base := p.rewriteBase.Load()
		if size >= minSize && size+s.snapshotSize() >= base+base*int64(pct)/100 {
			s.log.Info("log grew past auto-aof-rewrite limits, snapshotting to truncate it", "log_bytes", size, "base_bytes", base)
			p.rewriteScheduled.Store(false)
			s.startBgsave("auto-aof-rewrite")
			return
		}
	}
	if p.rewriteScheduled.Swap(false) {
		s.startBgsave("BGREWRITEAOF")
		return
	}
	if len(pts) == 0 {
		return
	}
	dirty := s.dirty()
	since := now.Unix() - p.lastSave.Load()
	for _, pt := range pts {
		if dirty >= pt.Changes && since > pt.Seconds {
			s.log.Info("save policy reached, saving", "changes", dirty, "seconds", since)
			s.startBgsave("save policy")
			return
		}
	}
}

// recoverAtStart loads the snapshot if there is one, then replays the log
// records newer than each slot's mark, cuts a torn last record, and opens
// a new log segment when appendonly is on. Clients connecting meanwhile
// are answered -LOADING. A corrupt or unreadable file is an error naming
// the file and the offset.
func (s *Server) recoverAtStart() error {
	p := &s.persist
	path := s.snapshotPath()
	logDir, logBase := s.logPaths()
	segs, _ := persist.Segments(s.fsys, logDir, logBase)
	var total int64
	snap := s.snapshotExistsAt(path)
	if snap {
		if n, err := s.fsys.Size(path); err == nil {
			total += n
		}
	}
	for _, i := range segs {
		if n, err := s.fsys.Size(filepath.Join(logDir, persist.SegmentName(logBase, i))); err == nil {
			total += n
		}
	}
	p.loadTotal.Store(total)
	p.loadedBytes.Store(0)
	p.loadStart.Store(time.Now().Unix())
	// A load allocates almost only what it keeps: with the collector on,
	// the heap growing from nothing triggers a cycle every gc-percent of
	// growth, each marking everything loaded so far (about 3x the load's
	// own CPU at gc-percent 30). It resumes, with its setting, after.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	marks := make([]uint64, cluster.NumSlots)
	var base uint64
	if snap {
		opt := persist.LoadOptions{Progress: &p.loadedBytes, KeepExpired: len(segs) > 0, FS: s.fsys,
			OnSection: func(slot int, mark uint64) { marks[slot] = mark }}
		if p.keyDelay.Load() > 0 {
			opt.KeyDelay = func() {
				if d := p.keyDelay.Load(); d > 0 {
					time.Sleep(time.Duration(d) * time.Microsecond)
				}
			}
		}
		s.log.Info("loading snapshot", "path", path)
		st, err := persist.LoadFile(s.db, path, opt)
		if err != nil {
			return err
		}
		base = st.Base
		p.lastLoadKeys.Store(int64(st.Keys))
		p.lastLoadExp.Store(int64(st.Expired))
		s.log.Info("DB loaded from disk", "path", path, "keys", st.Keys, "expired_skipped", st.Expired,
			"bytes", st.Bytes, "seconds", st.Duration.Seconds(), "log_base", st.Base)
	}
	last := base
	for i := range marks {
		marks[i] = max(marks[i], base)
		last = max(last, marks[i])
	}
	maxMark := last
	if len(segs) > 0 {
		start := time.Now()
		info, err := s.replayLog(logDir, logBase, marks)
		if err != nil {
			return fmt.Errorf("replay log: %w", err)
		}
		if info.Records > 0 && info.First > base+1 {
			return fmt.Errorf("replay log: the log in %q starts at record %d but the snapshot %q covers records up to %d only: records are missing",
				logDir, info.First, path, base)
		}
		if t := info.Torn; t != nil {
			s.log.Warn("log ends with an incomplete record (crash while writing it): cutting it off",
				"file", t.Path, "offset", t.Offset, "bytes_cut", t.Size-t.Offset)
			if err := persist.CutTorn(s.fsys, t); err != nil {
				return fmt.Errorf("cut the torn end of %q: %w", t.Path, err)
			}
		}
		if info.Next > 0 {
			last = max(last, info.Next-1)
		}
		if info.Records > 0 && info.Last >= maxMark {
			maxMark = base // every slot was brought up to the log's end
		}
		s.log.Info("log replayed", "dir", logDir, "segments", len(info.Segments), "records", info.Records,
			"last", info.Last, "seconds", time.Since(start).Seconds())
	}
	p.lastLSN.Store(last)
	p.exact.Store(maxMark == base)
	p.lastSave.Store(time.Now().Unix())
	p.dirtyBase.Store(s.rawWrites())
	return nil
}

// removeLogSegments deletes every log segment (the snapshot holds all
// their records, or the data they describe is being replaced).
func (s *Server) removeLogSegments() {
	dir, name := s.logPaths()
	segs, _ := persist.Segments(s.fsys, dir, name)
	for _, i := range segs {
		_ = s.fsys.Remove(filepath.Join(dir, persist.SegmentName(name, i)))
	}
}

// logPaths returns the log directory and the segments' base name.
func (s *Server) logPaths() (dir, base string) {
	s.cfg.Read(func(c *config.Config) { base = c.AppendFilename })
	return s.cfg.LogDir(), base
}

// openLog starts the log after recovery (appendonly yes).
func (s *Server) openLog() error {
	var policy string
	s.cfg.Read(func(c *config.Config) { policy = c.AppendFsync })
	pol, _ := persist.ParseFsync(policy)
	dir, base := s.logPaths()
	lg, err := persist.OpenLog(s.fsys, dir, base, s.persist.lastLSN.Load()+1, pol)
	if err != nil {
		return err
	}
	lg.OnProgress = s.logProgress
	if bl := s.repl.backlog.Load(); bl != nil {
		lg.SetTee(bl.Tee, func(last uint64) { bl.Reset(last + 1) })
	}
	var delay int
	s.cfg.Read(func(c *config.Config) { delay = c.AOFGroupCommitDelay })
	lg.SetGroupCommitDelay(time.Duration(delay) * time.Microsecond)
	s.aof.Store(lg)
	s.persist.rewriteBase.Store(lg.TotalSize() + s.snapshotSize())
	return nil
}

func (s *Server) snapshotSize() int64 {
	n, _ := s.fsys.Size(s.snapshotPath())
	return n
}

// snapshotExists reports whether a snapshot should be loaded at start:
// any error but "does not exist" counts as yes (loading then reports it).
func (s *Server) snapshotExistsAt(path string) bool {
	_, err := s.fsys.Size(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// abortStart stops the listeners after a failed start-up load.
func (s *Server) abortStart() {
	s.closing.Store(true)
	s.closeTLSFronts() // no new TLS clients; their relays close with them
	if s.adm != nil {
		_ = s.adm.Close()
	}
	s.engMu.Lock()
	eng := s.eng
	s.engMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = eng.Stop(ctx)
	<-s.done
}

// SaveOnExit saves a snapshot if a save policy is configured, as Redis
// does on SIGTERM. SHUTDOWN saves in its handler instead.
func (s *Server) SaveOnExit() error {
	var policy bool
	s.cfg.Read(func(c *config.Config) { policy = len(c.SavePoints) > 0 })
	if !policy {
		return nil
	}
	return s.save("shutdown")
}

func cmdSave(c *Ctx) {
	if c.cl.inMulti {
		c.w.Error("ERR Command not allowed inside a transaction")
		c.cl.flagMultiError()
		return
	}
	if c.srv.persist.bgRunning.Load() {
		c.w.Error("ERR Background save already in progress")
		return
	}
	if err := c.srv.save("SAVE"); err != nil {
		c.w.Error("ERR")
		return
	}
	c.w.OK()
}

func cmdBgsave(c *Ctx) {
	schedule := false
	if len(c.args) > 1 {
		if len(c.args) != 2 || !eq(c.args[1], "schedule") {
			c.w.Error(errSyntax)
			return
		}
		schedule = true
	}
	p := &c.srv.persist
	if c.srv.startBgsave("BGSAVE") {
		c.w.Simple("Background saving started")
		return
	}
	if schedule {
		p.bgScheduled.Store(true)
		c.w.Simple("Background saving scheduled")
		return
	}
	c.w.Error("ERR Background save already in progress")
}

// debugReload is DEBUG RELOAD: save, flush, load back (a test hook for the
// snapshot round trip).
func debugReload(c *Ctx) {
	s := c.srv
	if err := s.save("DEBUG RELOAD"); err != nil {
		c.w.Error("ERR Error trying to save the DB, aborting")
		return
	}
	c.forEachSlot(func(i int, sl *engine.Slot) bool {
		c.db.Flush(sl)
		return true
	})
	if _, err := persist.LoadFile(s.db, s.snapshotPath(), persist.LoadOptions{FS: s.fsys}); err != nil {
		s.log.Error("DEBUG RELOAD: load failed", "err", err)
		c.w.Error("ERR Error trying to load the RDB dump, check server logs.")
		return
	}
	c.w.OK()
}

// infoPersistence renders INFO's persistence section (Redis's fields).
func (s *Server) infoPersistence(b *strings.Builder, line func(string, any)) {
	p := &s.persist
	b.WriteString("# Persistence\r\n")
	loading := p.loading.Load()
	line("loading", b2i(loading))
	line("async_loading", 0)
	line("current_cow_peak", 0)
	line("current_cow_size", 0)
	line("current_cow_size_age", 0)
	line("current_fork_perc", "0.00")
	line("current_save_keys_processed", 0)
	line("current_save_keys_total", 0)
	if loading {
		total, done := p.loadTotal.Load(), p.loadedBytes.Load()
		elapsed := time.Now().Unix() - p.loadStart.Load()
		perc := 0.0
		if total > 0 {
			perc = float64(done) * 100 / float64(total)
		}
		eta := 1
		if done > 0 && elapsed > 0 {
			eta = int(float64(total-done) / (float64(done) / float64(elapsed)))
		}
		line("loading_start_time", p.loadStart.Load())
		line("loading_total_bytes", total)
		line("loading_rdb_used_mem", 0)
		line("loading_loaded_bytes", done)
		line("loading_loaded_perc", fmt.Sprintf("%.2f", perc))
		line("loading_eta_seconds", eta)
	}
	line("rdb_changes_since_last_save", s.dirty())
	running := p.bgRunning.Load()
	line("rdb_bgsave_in_progress", b2i(running))
	line("rdb_last_save_time", p.lastSave.Load())
	status := "ok"
	if p.lastFailed.Load() {
		status = "err"
	}
	line("rdb_last_bgsave_status", status)
	line("rdb_last_bgsave_time_sec", p.lastBgSecs.Load())
	cur := int64(-1)
	if running {
		cur = (time.Now().UnixMilli() - p.bgStart.Load()) / 1000
	}
	line("rdb_current_bgsave_time_sec", cur)
	line("rdb_saves", p.saves.Load())
	line("rdb_last_cow_size", 0)
	line("rdb_last_load_keys_expired", p.lastLoadExp.Load())
	line("rdb_last_load_keys_loaded", p.lastLoadKeys.Load())
	lg := s.aof.Load()
	line("aof_enabled", b2i(lg != nil))
	rewriting := running && lg != nil
	line("aof_rewrite_in_progress", b2i(rewriting))
	line("aof_rewrite_scheduled", b2i(p.rewriteScheduled.Load()))
	line("aof_last_rewrite_time_sec", p.lastBgSecs.Load())
	line("aof_current_rewrite_time_sec", map[bool]int64{true: cur, false: -1}[rewriting])
	line("aof_last_bgrewrite_status", status)
	line("aof_rewrites", p.rewrites.Load())
	line("aof_rewrites_consecutive_failures", 0)
	wstatus := "ok"
	if lg != nil && lg.Err() != nil {
		wstatus = "err"
	}
	line("aof_last_write_status", wstatus)
	line("aof_last_cow_size", 0)
	if lg != nil {
		line("aof_current_size", lg.TotalSize())
		line("aof_base_size", p.rewriteBase.Load())
		line("aof_pending_rewrite", 0)
		line("aof_buffer_length", lg.Buffered())
		line("aof_pending_bio_fsync", 0)
		line("aof_delayed_fsync", 0)
		line("aof_last_lsn", lg.Last())
		line("aof_written_lsn", lg.Written())
		line("aof_fsynced_lsn", lg.Durable())
		line("aof_write_errors", lg.Errors())
	}
	line("module_fork_in_progress", 0)
	line("module_fork_last_cow_size", 0)
}
