package server_test

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"shoal/internal/persist/faultfs"
	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// crashWorkload is the scripted workload of the crash tests: counters,
// keys and a list, with a snapshot (SAVE) in the middle.
func crashWorkload() [][]string {
	var w [][]string
	for i := 0; i < 24; i++ {
		if i == 12 {
			w = append(w, []string{"SAVE"})
		}
		switch i % 3 {
		case 0:
			w = append(w, []string{"INCR", "ctr"})
		case 1:
			w = append(w, []string{"SET", fmt.Sprintf("k%d", i), fmt.Sprint(i)})
		default:
			w = append(w, []string{"RPUSH", "lst", fmt.Sprint(i)})
		}
	}
	return w
}

// modelAfter renders the state after the first p commands, as
// observeState renders a server's.
func modelAfter(w [][]string, p int) string {
	ctr := 0
	keys := map[string]string{}
	var lst []string
	for _, c := range w[:p] {
		switch c[0] {
		case "INCR":
			ctr++
		case "SET":
			keys[c[1]] = c[2]
		case "RPUSH":
			lst = append(lst, c[2])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ctr=%d", ctr)
	for i := 0; i < 24; i++ {
		if v, ok := keys[fmt.Sprintf("k%d", i)]; ok {
			fmt.Fprintf(&b, " k%d=%s", i, v)
		}
	}
	fmt.Fprintf(&b, " lst=%v", lst)
	return b.String()
}

func observeState(t *testing.T, c *tu.Conn) string {
	t.Helper()
	var b strings.Builder
	ctr := c.Do("GET", "ctr")
	if ctr == "(nil)" {
		ctr = `"0"`
	}
	n, _ := strconv.Unquote(ctr)
	fmt.Fprintf(&b, "ctr=%s", n)
	for i := 0; i < 24; i++ {
		if v := c.Do("GET", fmt.Sprintf("k%d", i)); v != "(nil)" {
			u, _ := strconv.Unquote(v)
			fmt.Fprintf(&b, " k%d=%s", i, u)
		}
	}
	r, err := c.DoReply("LRANGE", "lst", "0", "-1")
	if err != nil {
		t.Fatal(err)
	}
	var lst []string
	for _, e := range r.Elems {
		lst = append(lst, e.Str)
	}
	fmt.Fprintf(&b, " lst=%v", lst)
	return b.String()
}

// runUntilCrash sends the workload one command at a time and returns how
// many were sent and how many acknowledged (a reply that is not an
// error) before the file system crashed.
func runUntilCrash(t *testing.T, addr string, w [][]string, ffs *faultfs.FS) (sent, acked int) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	replies := make(chan resp.Reply, 1)
	go func() {
		rd := bufio.NewReader(conn)
		for {
			rep, err := resp.ReadReply(rd, 0)
			if err != nil {
				close(replies)
				return
			}
			replies <- rep
		}
	}()
	for _, cmd := range w {
		select {
		case <-ffs.CrashedCh():
			return sent, acked
		default:
		}
		if _, err := conn.Write(resp.AppendCommand(nil, cmd...)); err != nil {
			return sent, acked
		}
		sent++
		select {
		case r, ok := <-replies:
			if !ok {
				return sent, acked
			}
			if r.Kind != '-' {
				acked++
			}
		case <-ffs.CrashedCh():
			// The reply of a command whose record was persisted just
			// before the crash may still be on its way; it is not
			// counted (the check allows it either way).
			return sent, acked
		}
	}
	return sent, acked
}

// TestCrashAtEveryWriteAndFsync crashes (power loss) at every write and
// fsync the workload makes, including those of the snapshot and of the
// log rotation it does, with a random part of the unsynced bytes
// surviving, then restarts on what the disk kept. With appendfsync always
// the recovered state is exactly the acknowledged commands (or one more,
// whose record was on disk when the reply was lost); with everysec and no,
// it is some prefix of the commands sent. Start-up never fails.
func TestCrashAtEveryWriteAndFsync(t *testing.T) {
	w := crashWorkload()
	for _, policy := range []string{"always", "everysec", "no"} {
		t.Run(policy, func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			points := 0
			// Closing a server takes half a second (gnet polls its loops'
			// shutdown): crashed servers close in the background.
			var closing sync.WaitGroup
			defer closing.Wait()
			bgClose := func(n *node) {
				closing.Add(1)
				go func() { defer closing.Done(); n.srv.Close() }()
			}
			for k := 1; ; k++ {
				ffs := faultfs.New()
				ffs.CrashAt(k)
				n, err := startNodeErr(t, "/d", ffs, "appendonly", "yes", "appendfsync", policy)
				sent, acked := 0, 0
				if err == nil {
					sent, acked = runUntilCrash(t, n.addr, w, ffs)
				}
				if !ffs.Crashed() {
					bgClose(n)
					points = k - 1
					break
				}
				crashed := ffs.Crash(func(string, int) int { return rng.Intn(64) })
				if n != nil {
					bgClose(n)
				}
				n2, err := startNodeErr(t, "/d", crashed, "appendonly", "yes")
				if err != nil {
					t.Fatalf("crash at op %d: restart failed: %v", k, err)
				}
				c := tu.Dial(t, n2.addr)
				got := observeState(t, c)
				c.C.Close()
				bgClose(n2)
				ok := false
				lo := acked
				if policy != "always" {
					lo = 0
				}
				for p := lo; p <= sent && p <= len(w); p++ {
					if got == modelAfter(w, p) {
						ok = true
						break
					}
				}
				if !ok {
					t.Fatalf("crash at op %d (sent %d, acked %d): recovered\n%s\nwhich is no state between\n%s\nand\n%s",
						k, sent, acked, got, modelAfter(w, lo), modelAfter(w, sent))
				}
			}
			if points < len(w) {
				t.Fatalf("only %d crash points for %d commands", points, len(w))
			}
			t.Logf("%s: %d crash points checked", policy, points)
		})
	}
}
