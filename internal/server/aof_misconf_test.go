package server_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/persist/faultfs"
	tu "shoal/internal/testutil"
)

// redisMisconf is redis-server's reply to a write while
// stop-writes-on-bgsave-error refuses them.
const redisMisconf = "(error) MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. " +
	"Commands that may modify the data set are disabled, because this instance is configured to report errors " +
	"during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error."

// waitInfo polls INFO section until field has the value want.
func waitInfo(t *testing.T, c *tu.Conn, section, field, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := infoField(t, c, section, field)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("INFO %s: %s is %s, want %s", section, field, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestStopWritesOnBgsaveError: with a save policy, a failed snapshot
// makes write commands fail with Redis's MISCONF text while reads go on;
// CONFIG SET stop-writes-on-bgsave-error no (or an empty save policy)
// lifts the refusal at once, and a successful save ends it.
func TestStopWritesOnBgsaveError(t *testing.T) {
	ffs := faultfs.New()
	// A policy that does not fire during the test: the saves are BGSAVE
	// and SAVE.
	n := startNode(t, "/data", ffs, "save", "3600 1")
	defer n.srv.Close()
	c := tu.Dial(t, n.addr)
	steps(t, c, "SET k v", "OK")

	ffs.SetFull(true)
	steps(t, c, "BGSAVE", "Background saving started")
	waitBgsave(t, c)
	wantInfo(t, c, "persistence", "rdb_last_bgsave_status", "err")
	refused := func(when string) {
		t.Helper()
		for _, cmd := range [][]string{{"SET", "x", "1"}, {"DEL", "k"}, {"INCR", "n"}, {"LPUSH", "l", "a"}} {
			if got := c.Do(cmd...); got != redisMisconf {
				t.Fatalf("%s: %q got %q", when, cmd, got)
			}
		}
		steps(t, c, "GET k", `"v"`, "EXISTS n l", "(integer) 0")
	}
	refused("after a failed BGSAVE")

	// The refusal follows the configuration at once.
	steps(t, c, "CONFIG SET stop-writes-on-bgsave-error no", "OK", "SET x 1", "OK")
	steps(t, c, "CONFIG SET stop-writes-on-bgsave-error yes", "OK")
	refused("stop-writes-on-bgsave-error set back to yes")
	if got := c.Do("CONFIG", "SET", "save", ""); got != "OK" {
		t.Fatal(got)
	}
	steps(t, c, "SET x 2", "OK")
	if got := c.Do("CONFIG", "SET", "save", "3600 1"); got != "OK" {
		t.Fatal(got)
	}
	refused("save policy set again")

	// A successful save ends it; a failed SAVE starts it again at once.
	ffs.SetFull(false)
	steps(t, c, "BGSAVE", "Background saving started")
	waitBgsave(t, c)
	wantInfo(t, c, "persistence", "rdb_last_bgsave_status", "ok")
	steps(t, c, "SET x 3", "OK", "DEL k", "(integer) 1", "SET k v", "OK")
	ffs.SetFull(true)
	steps(t, c, "SAVE", "(error) ERR")
	refused("after a failed SAVE")
	ffs.SetFull(false)
	steps(t, c, "SAVE", "OK", "SET x 4", "OK", "GET x", `"4"`)
	if _, ok := ffs.ReadFile("/data/dump.shoal"); !ok {
		t.Fatal("no snapshot after a successful save")
	}
}

// TestMemcachedDiskFullMisconf: with appendonly yes, memcached writes on
// a full disk get SERVER_ERROR MISCONF (and change nothing) while gets
// are served; once space returns the write in flight is acknowledged and
// writes work again, and every acknowledged write survives a power loss.
func TestMemcachedDiskFullMisconf(t *testing.T) {
	ffs := faultfs.New()
	mport := tu.FreePort(t)
	n := startNode(t, "/data", ffs, "appendonly", "yes", "appendfsync", "always", "memcached-port", strconv.Itoa(mport))
	defer n.srv.Close()
	maddr := "127.0.0.1:" + strconv.Itoa(mport)
	m := mcDial(t, maddr)
	mcRun(t, m, []mcCase{{"set a 5 0 2\r\nhi\r\n", "STORED|"}, {"set n 0 0 1\r\n7\r\n", "STORED|"}})

	ffs.SetFull(true)
	// A write sent now is appended before the error is known: its reply
	// waits for the disk.
	held, err := net.DialTimeout("tcp", maddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Write([]byte("set during 0 0 1\r\n1\r\n")); err != nil {
		t.Fatal(err)
	}
	c := tu.Dial(t, n.addr)
	waitInfo(t, c, "persistence", "aof_last_write_status", "err")

	const misconf = "SERVER_ERROR MISCONF Errors writing to the AOF file: No space left on device|"
	mcRun(t, m, []mcCase{
		{"get a\r\n", "VALUE a 5 2|hi|END|"},
		{"set x 0 0 1\r\n1\r\n", misconf},
		{"set a 0 0 3\r\nnew\r\n", misconf},
		{"add y 0 0 1\r\n1\r\n", misconf},
		{"append a 0 0 1\r\n!\r\n", misconf},
		{"incr n 1\r\n", misconf},
		{"delete a\r\n", misconf},
		{"touch a 100\r\n", misconf},
		{"ms m 2\r\nok\r\n", misconf},
		{"md a\r\n", misconf},
		{"flush_all\r\n", misconf},
		// Nothing changed, and the stream is still in step.
		{"get a n x y m\r\n", "VALUE a 5 2|hi|VALUE n 0 1|7|END|"},
		{"mg a v f\r\n", "VA 2 f5|hi|"},
	})
	held.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if k, err := held.Read(make([]byte, 64)); err == nil || k > 0 {
		t.Fatal("the write in flight was answered while the disk was full")
	}

	ffs.SetFull(false)
	held.SetReadDeadline(time.Now().Add(30 * time.Second))
	line := make([]byte, 8)
	if k, err := held.Read(line); err != nil || string(line[:k]) != "STORED\r\n" {
		t.Fatalf("write in flight after space returned: %q %v", line[:k], err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := m.do(t, "set after 0 0 1\r\n1\r\n")
		if got == "STORED|" {
			break
		}
		if got != misconf || time.Now().After(deadline) {
			t.Fatalf("memcached write after space returned: %q", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
	mcRun(t, m, []mcCase{{"incr n 1\r\n", "8|"}, {"get during after\r\n", "VALUE during 0 1|1|VALUE after 0 1|1|END|"}})

	// Power loss now: every acknowledged write is on disk, no refused one.
	n2 := startNode(t, "/data", ffs.Crash(nil), "appendonly", "yes")
	defer n2.srv.Close()
	c2 := tu.Dial(t, n2.addr)
	steps(t, c2, "GET a", `"hi"`, "GET n", `"8"`, "GET during", `"1"`, "GET after", `"1"`,
		"EXISTS x y m", "(integer) 0")
}

// TestConfigSetAppendfsync: CONFIG SET appendfsync takes effect on the
// running log: under no, an acknowledged write is written but not
// fsynced; under always it is fsynced before the reply (and survives a
// power loss); under everysec it is fsynced soon after.
func TestConfigSetAppendfsync(t *testing.T) {
	ffs := faultfs.New()
	n := startNode(t, "/data", ffs, "appendonly", "yes", "appendfsync", "no")
	defer n.srv.Close()
	c := tu.Dial(t, n.addr)
	lsns := func() (last, written, fsynced string) {
		return infoField(t, c, "persistence", "aof_last_lsn"), infoField(t, c, "persistence", "aof_written_lsn"),
			infoField(t, c, "persistence", "aof_fsynced_lsn")
	}
	check := func(policy, wantLast, wantWritten, wantFsynced string) {
		t.Helper()
		if got := c.Do("CONFIG", "GET", "appendfsync"); got != `["appendfsync" "`+policy+`"]` {
			t.Fatalf("CONFIG GET appendfsync: %s", got)
		}
		if l, w, f := lsns(); l != wantLast || w != wantWritten || f != wantFsynced {
			t.Fatalf("appendfsync %s: last %s written %s fsynced %s, want %s %s %s", policy, l, w, f, wantLast, wantWritten, wantFsynced)
		}
		if got := infoField(t, c, "persistence", "aof_last_write_status"); got != "ok" {
			t.Fatalf("aof_last_write_status %s", got)
		}
	}

	steps(t, c, "SET a 1", "OK")
	check("no", "1", "1", "0")

	steps(t, c, "CONFIG SET appendfsync always", "OK", "SET b 1", "OK")
	check("always", "2", "2", "2")
	n2 := startNode(t, "/data", ffs.Crash(nil), "appendonly", "yes")
	steps(t, tu.Dial(t, n2.addr), "MGET a b", `["1" "1"]`)
	n2.srv.Close()

	steps(t, c, "CONFIG SET appendfsync everysec", "OK", "SET c 1", "OK")
	if l, w, _ := lsns(); l != "3" || w != "3" {
		t.Fatalf("everysec: last %s written %s", l, w)
	}
	waitInfo(t, c, "persistence", "aof_fsynced_lsn", "3")
	check("everysec", "3", "3", "3")

	steps(t, c, "CONFIG SET appendfsync no", "OK", "SET d 1", "OK")
	check("no", "4", "4", "3")

	if got := c.Do("CONFIG", "SET", "appendfsync", "sometimes"); !strings.HasPrefix(got, "(error) ERR") {
		t.Fatalf("CONFIG SET appendfsync sometimes: %s", got)
	}
	check("no", "4", "4", "3")
	// Back to always: the record written under no is fsynced too.
	steps(t, c, "CONFIG SET appendfsync always", "OK", "SET e 1", "OK")
	check("always", "5", "5", "5")

	// With the log off the setting is only stored.
	n3 := startNode(t, t.TempDir(), nil)
	defer n3.srv.Close()
	c3 := tu.Dial(t, n3.addr)
	steps(t, c3, "CONFIG SET appendfsync always", "OK", "SET a 1", "OK", "CONFIG GET appendfsync", `["appendfsync" "always"]`)
	wantInfo(t, c3, "persistence", "aof_enabled", "0")
}
