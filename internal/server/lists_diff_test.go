package server_test

import (
	"fmt"
	"math/rand"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	tu "shoal/internal/testutil"
)

// startRedis runs a redis-server on a free port for the test, or skips
// the test when redis-server is not installed.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	port := tu.FreePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := exec.Command("redis-cli", "-p", strconv.Itoa(port), "ping").Output()
		if err == nil && strings.TrimSpace(string(c)) == "PONG" {
			return addr
		}
		if _, err := exec.LookPath("redis-cli"); err != nil {
			t.Skip("redis-cli not installed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestListsMatchRedis runs the same random list commands against Shoal and
// a real redis-server and compares every reply: lists grow past many
// packed nodes (elements up to 3 KiB) and are changed at both ends and in
// the middle.
func TestListsMatchRedis(t *testing.T) {
	raddr := startRedis(t)
	r := tu.Dial(t, raddr)
	s := tu.Dial(t, tu.StartServer(t).Addr)
	rng := rand.New(rand.NewSource(7))
	keys := []string{"la", "lb", "lc"}
	val := func() string {
		d := rng.Intn(40)
		if d >= 38 {
			return fmt.Sprint(d) + strings.Repeat("v", 1500*(d-37))
		}
		d %= 10
		return fmt.Sprint(d)
	}
	idx := func() string { return fmt.Sprint(rng.Intn(600) - 300) }
	side := func() string { return []string{"LEFT", "RIGHT"}[rng.Intn(2)] }
	steps := 4000
	if testing.Short() {
		steps = 1500
	}
	for step := 0; step < steps; step++ {
		k := keys[rng.Intn(len(keys))]
		var cmd []string
		switch op := rng.Intn(20); op {
		case 0, 1, 2, 3:
			cmd = []string{"LPUSH", k}
			for range 1 + rng.Intn(40) {
				cmd = append(cmd, val())
			}
		case 4, 5, 6, 7:
			cmd = []string{"RPUSH", k}
			for range 1 + rng.Intn(40) {
				cmd = append(cmd, val())
			}
		case 8:
			cmd = []string{"LPOP", k, fmt.Sprint(rng.Intn(30))}
		case 9:
			cmd = []string{"RPOP", k}
		case 10:
			cmd = []string{"LINDEX", k, idx()}
		case 11:
			cmd = []string{"LSET", k, idx(), val()}
		case 12:
			cmd = []string{"LINSERT", k, []string{"BEFORE", "AFTER"}[rng.Intn(2)], val(), val()}
		case 13:
			cmd = []string{"LREM", k, fmt.Sprint(rng.Intn(7) - 3), val()}
		case 14:
			if rng.Intn(8) == 0 {
				cmd = []string{"LTRIM", k, fmt.Sprint(rng.Intn(20)), fmt.Sprint(-1 - rng.Intn(20))}
			} else {
				cmd = []string{"LLEN", k}
			}
		case 15:
			cmd = []string{"LRANGE", k, idx(), idx()}
		case 16:
			cmd = []string{"LPOS", k, val(), "RANK", fmt.Sprint([]int{1, 2, -1, -3}[rng.Intn(4)]),
				"COUNT", fmt.Sprint(rng.Intn(4)), "MAXLEN", fmt.Sprint(rng.Intn(300))}
		case 17:
			cmd = []string{"LMOVE", k, keys[rng.Intn(len(keys))], side(), side()}
		case 18:
			cmd = []string{"RPOPLPUSH", k, k}
		case 19:
			if rng.Intn(10) == 0 {
				cmd = []string{"LRANGE", k, "0", "-1"}
			} else {
				cmd = []string{"LRANGE", k, "-5", "5"}
			}
		}
		want, got := r.Do(cmd...), s.Do(cmd...)
		if got != want {
			c := strings.Join(cmd, " ")
			if len(c) > 200 {
				c = c[:200] + "..."
			}
			if len(got) > 300 {
				got, want = got[:300]+"...", want[:300]+"..."
			}
			t.Fatalf("step %d: %s\n shoal %s\n redis %s", step, c, got, want)
		}
	}
	for _, k := range keys {
		if want, got := r.Do("LRANGE", k, "0", "-1"), s.Do("LRANGE", k, "0", "-1"); got != want {
			t.Fatalf("final %s differs", k)
		}
	}
}
