// Package e2e drives the built shoal binary as users do: a process started
// from the command line, redis-cli, redis-benchmark, go-redis and raw
// sockets, and signals.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var shoalBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shoal-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		fmt.Fprintf(os.Stderr, "go env GOMOD: %v %s\n", err, out)
		return 1
	}
	root := filepath.Dir(string(bytes.TrimSpace(out)))
	shoalBin = filepath.Join(dir, "shoal")
	build := exec.Command("go", "build", "-o", shoalBin, "./cmd/shoal")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building shoal: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// proc is a running shoal server.
type proc struct {
	cmd  *exec.Cmd
	port int
	addr string
	done chan struct{} // closed when the process exited
	err  error         // Wait's result, valid after done
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startShoal starts `shoal server --port N` and waits until it accepts
// connections. The process is stopped when the test ends.
func startShoal(t *testing.T, args ...string) *proc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		p := &proc{port: freePort(t), done: make(chan struct{}), log: &syncBuffer{}}
		p.addr = "127.0.0.1:" + strconv.Itoa(p.port)
		p.cmd = exec.Command(shoalBin, append([]string{"server", "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1"}, args...)...)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		if err := p.waitReady(20 * time.Second); err != nil {
			// Free ports are only free when picked: another listener (or
			// the memcached port the caller picked) may have taken it.
			if l := p.log.String(); attempt < 3 && (strings.Contains(l, "address already in use") || strings.Contains(l, "must differ from port")) {
				continue
			}
			p.kill()
			t.Fatalf("shoal did not start: %v\n%s", err, p.log.String())
		}
		t.Cleanup(func() {
			p.kill()
			if t.Failed() {
				t.Logf("shoal log:\n%s", p.log.String())
			}
		})
		return p
	}
}

// waitReady polls until a connection succeeds and PING answers.
func (p *proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		default:
		}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			var line string
			if err == nil {
				line, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			// A server with requirepass answers NOAUTH: it is up.
			if err == nil && (line == "+PONG\r\n" || strings.HasPrefix(line, "-NOAUTH")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %v: %v", timeout, err)
		}
		// Exponential back-off while waiting for the process: there is
		// no event to wait on before it listens.
		select {
		case <-time.After(delay):
		case <-p.done:
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not in PATH", name)
	}
	return path
}

// cli runs redis-cli against p and returns its trimmed output.
func cli(t *testing.T, p *proc, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, "redis-cli"), append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.port)}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestRedisCLI(t *testing.T) {
	needTool(t, "redis-cli")
	p := startShoal(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "k", "v"}, "OK"},
		{[]string{"GET", "k"}, "v"},
		{[]string{"GET", "missing"}, ""},
		{[]string{"INCR", "n"}, "1"},
		{[]string{"INCRBY", "n", "41"}, "42"},
		{[]string{"MSET", "a", "1", "b", "2"}, "OK"},
		{[]string{"MGET", "a", "b", "missing"}, "1\n2"}, // the nil prints as an empty line
		{[]string{"SET", "sp", "hello world"}, "OK"},
		{[]string{"GET", "sp"}, "hello world"},
		{[]string{"EXPIRE", "k", "1000"}, "1"},
		{[]string{"TTL", "k"}, "1000"},
		{[]string{"DEL", "k", "a", "b"}, "3"},
		{[]string{"EXISTS", "k"}, "0"},
		{[]string{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"NOSUCHCMD", "x"}, "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' "},
	}
	for _, s := range steps {
		if got := cli(t, p, "", s.args...); got != s.want {
			t.Errorf("redis-cli %q = %q, want %q", s.args, got, s.want)
		}
	}
	// Several commands over one connection from stdin (interactive-less mode).
	if got := cli(t, p, "SET x 1\nINCR x\nGET x\n"); got != "OK\n2\n2" {
		t.Errorf("redis-cli with stdin commands: %q", got)
	}
	// -x: last argument from stdin, binary-safe.
	if got := cli(t, p, "line1\r\nline2\x00end", "-x", "SET", "bin"); got != "OK" {
		t.Errorf("redis-cli -x SET: %q", got)
	}
	if got := cli(t, p, "", "STRLEN", "bin"); got != "16" {
		t.Errorf("STRLEN bin: %q", got)
	}
	// RESP3 via HELLO 3: redis-cli prints a map.
	hello := cli(t, p, "", "-3", "--no-raw", "HELLO", "3")
	for _, want := range []string{`1# "server" => "redis"`, `"proto" => (integer) 3`, `"version" => "7.`, `"mode" => "standalone"`} {
		if !strings.Contains(hello, want) {
			t.Errorf("redis-cli -3 HELLO 3 output lacks %s:\n%s", want, hello)
		}
	}
	if got := cli(t, p, "", "-3", "--no-raw", "GET", "missing"); got != "(nil)" {
		t.Errorf("redis-cli -3 GET missing = %q", got)
	}
}

// TestRedisCLIACL: redis-cli --user/--pass against ACL users given as
// --user directives, and ACL SETUSER at run time.
func TestRedisCLIACL(t *testing.T) {
	needTool(t, "redis-cli")
	p := startShoal(t, "--requirepass", "adminpw", "--user", "app on >apppw ~app:* &* +@all -@dangerous")
	as := func(user, pass string) []string {
		return []string{"--no-auth-warning", "--user", user, "--pass", pass}
	}
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "app:1"}, "NOAUTH Authentication required."},
		{append(as("app", "apppw"), "SET", "app:1", "v"), "OK"},
		{append(as("app", "apppw"), "GET", "app:1"), "v"},
		{append(as("app", "apppw"), "ACL", "WHOAMI"), "app"},
		{append(as("app", "apppw"), "SET", "other", "v"), "NOPERM No permissions to access a key"},
		{append(as("app", "apppw"), "FLUSHALL"), "NOPERM User app has no permissions to run the 'flushall' command"},
		{append(as("app", "wrong"), "GET", "app:1"), "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."},
		{[]string{"--no-auth-warning", "-a", "adminpw", "ACL", "SETUSER", "ro", "on", ">ropw", "~*", "+@read"}, "OK"},
		{append(as("ro", "ropw"), "GET", "app:1"), "v"},
		{append(as("ro", "ropw"), "DEL", "app:1"), "NOPERM User ro has no permissions to run the 'del' command"},
		{[]string{"--no-auth-warning", "-a", "adminpw", "ACL", "USERS"}, "app\ndefault\nro"},
	} {
		if got := cli(t, p, "", s.args...); !strings.Contains(got, s.want) {
			t.Errorf("redis-cli %q = %q, want %q", s.args, got, s.want)
		}
	}
}

func TestRedisCLIPipe(t *testing.T) {
	needTool(t, "redis-cli")
	p := startShoal(t)
	const n = 20000
	var in bytes.Buffer
	for i := 0; i < n; i++ {
		key, val := "key:"+strconv.Itoa(i), "value\r\n"+strconv.Itoa(i)
		fmt.Fprintf(&in, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(val), val)
	}
	// Mix in inline commands, as --pipe allows.
	in.WriteString("INCR counter\r\nINCR counter\r\n")
	out := cli(t, p, in.String(), "--pipe")
	if !strings.Contains(out, fmt.Sprintf("errors: 0, replies: %d", n+2)) {
		t.Fatalf("redis-cli --pipe: %s", out)
	}
	if got := cli(t, p, "", "DBSIZE"); got != strconv.Itoa(n+1) {
		t.Fatalf("DBSIZE after mass insert = %s, want %d", got, n+1)
	}
	if got := cli(t, p, "", "--no-raw", "GET", "key:12345"); got != `"value\r\n12345"` {
		t.Fatalf("GET key:12345 = %s", got)
	}
	if got := cli(t, p, "", "GET", "counter"); got != "2" {
		t.Fatalf("GET counter = %s", got)
	}
}

// rawExchange writes req on a fresh connection, half-closes it and
// returns everything the server sends before closing.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading reply to %q: %v", req, err)
	}
	return string(out)
}

func TestRawSocket(t *testing.T) {
	p := startShoal(t)
	cases := []struct{ req, want string }{
		{"PING\r\n", "+PONG\r\n"},
		{"PING\n", "+PONG\r\n"},
		{"ECHO \"hello world\"\r\nECHO 'x y'\r\n", "$11\r\nhello world\r\n$3\r\nx y\r\n"},
		{"SET raw \"a\\r\\nb\"\r\nGET raw\r\n", "+OK\r\n$4\r\na\r\nb\r\n"},
		{"*1\r\n$4\r\nPING\r\nPING\r\n\r\nPING\r\n", "+PONG\r\n+PONG\r\n+PONG\r\n"},
		{"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"SET k \"v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"QUIT\r\nPING\r\n", "+OK\r\n"},
	}
	for _, tc := range cases {
		if got := rawExchange(t, p.addr, tc.req); got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.req, got, tc.want)
		}
	}
}

func newClient(t *testing.T, p *proc, proto int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: proto, PoolSize: 16})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestGoRedis(t *testing.T) {
	p := startShoal(t)
	for _, proto := range []int{2, 3} {
		t.Run("resp"+strconv.Itoa(proto), func(t *testing.T) {
			ctx := context.Background()
			rdb := newClient(t, p, proto)
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(rdb.Set(ctx, "k", "v", 0).Err())
			if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Fatalf("GET k = %q, %v", v, err)
			}
			if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET missing: %v, want redis.Nil", err)
			}
			if n, err := rdb.Incr(ctx, "n").Result(); err != nil || n != 1 {
				t.Fatalf("INCR = %d, %v", n, err)
			}
			if err := rdb.Incr(ctx, "k").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Fatalf("INCR of a non-integer: %v", err)
			}
			if ok, err := rdb.Expire(ctx, "k", 1000*time.Second).Result(); err != nil || !ok {
				t.Fatalf("EXPIRE = %v, %v", ok, err)
			}
			if d, err := rdb.TTL(ctx, "k").Result(); err != nil || d != 1000*time.Second {
				t.Fatalf("TTL = %v, %v", d, err)
			}
			if d, err := rdb.TTL(ctx, "n").Result(); err != nil || d != -1 {
				t.Fatalf("TTL without expiry = %v, %v", d, err)
			}
			must(rdb.SetEx(ctx, "ex", "v", time.Hour).Err())
			if d, err := rdb.PTTL(ctx, "ex").Result(); err != nil || d <= 59*time.Minute || d > time.Hour {
				t.Fatalf("PTTL = %v, %v", d, err)
			}
			must(rdb.MSet(ctx, "a", "1", "b", "2", "c", "bin\x00\r\n").Err())
			vals, err := rdb.MGet(ctx, "a", "b", "nope", "c").Result()
			if err != nil || fmt.Sprint(vals) != "[1 2 <nil> bin\x00\r\n]" {
				t.Fatalf("MGET = %q, %v", vals, err)
			}
			if ok, err := rdb.SetNX(ctx, "a", "x", 0).Result(); err != nil || ok {
				t.Fatalf("SETNX existing = %v, %v", ok, err)
			}
			if n, err := rdb.Exists(ctx, "a", "b", "nope").Result(); err != nil || n != 2 {
				t.Fatalf("EXISTS = %d, %v", n, err)
			}
			if n, err := rdb.Del(ctx, "a", "nope").Result(); err != nil || n != 1 {
				t.Fatalf("DEL = %d, %v", n, err)
			}

			// Pipeline: many commands in one round trip, replies in order.
			pipe := rdb.Pipeline()
			var incrs []*redis.IntCmd
			for i := 0; i < 100; i++ {
				pipe.Set(ctx, "p:"+strconv.Itoa(i), i, 0)
				incrs = append(incrs, pipe.Incr(ctx, "pc"))
			}
			get := pipe.Get(ctx, "p:42")
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("pipeline: %v", err)
			}
			for i, c := range incrs {
				if c.Val() != int64(i+1) {
					t.Fatalf("pipelined INCR %d = %d", i, c.Val())
				}
			}
			if get.Val() != "42" {
				t.Fatalf("pipelined GET = %q", get.Val())
			}

			// MULTI/EXEC.
			var txIncr *redis.IntCmd
			var txGet *redis.StringCmd
			cmds, err := rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
				tx.Set(ctx, "tx", "10", 0)
				txIncr = tx.IncrBy(ctx, "tx", 5)
				txGet = tx.Get(ctx, "tx")
				return nil
			})
			if err != nil || len(cmds) != 3 || txIncr.Val() != 15 || txGet.Val() != "15" {
				t.Fatalf("TxPipelined: %v %v incr=%d get=%q", cmds, err, txIncr.Val(), txGet.Val())
			}
			// A command error inside EXEC does not abort the others.
			cmds, err = rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
				tx.Set(ctx, "txs", "abc", 0)
				tx.Incr(ctx, "txs")
				tx.Append(ctx, "txs", "d")
				return nil
			})
			if err == nil || len(cmds) != 3 || cmds[1].Err() == nil || cmds[2].(*redis.IntCmd).Val() != 4 {
				t.Fatalf("TxPipelined with an error: %v %v", cmds, err)
			}
		})
	}
}

// Optimistic locking: concurrent read-modify-write through WATCH/MULTI
// with retries yields exactly the total.
func TestGoRedisWatch(t *testing.T) {
	p := startShoal(t)
	ctx := context.Background()
	rdb := newClient(t, p, 3)
	const workers, perWorker = 5, 100
	incr := func(key string) error {
		for {
			err := rdb.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, key).Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
					pipe.Set(ctx, key, n+1, 0)
					return nil
				})
				return err
			}, key)
			if errors.Is(err, redis.TxFailedErr) {
				continue // someone else won the race: retry
			}
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if err := incr("counter"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := rdb.Get(ctx, "counter").Int(); err != nil || n != workers*perWorker {
		t.Fatalf("counter = %d, %v; want %d", n, err, workers*perWorker)
	}
}

func TestGoRedisPubSub(t *testing.T) {
	p := startShoal(t)
	for _, proto := range []int{2, 3} {
		t.Run("resp"+strconv.Itoa(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rdb := newClient(t, p, proto)
			sub := rdb.Subscribe(ctx, "news")
			defer sub.Close()
			if _, err := sub.Receive(ctx); err != nil { // the subscribe confirmation
				t.Fatal(err)
			}
			psub := rdb.PSubscribe(ctx, "n*")
			defer psub.Close()
			if _, err := psub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				n, err := rdb.Publish(ctx, "news", "msg"+strconv.Itoa(i)).Result()
				if err != nil || n != 2 {
					t.Fatalf("PUBLISH = %d, %v; want 2 receivers", n, err)
				}
			}
			for i := 0; i < 10; i++ {
				m, err := sub.ReceiveMessage(ctx)
				if err != nil || m.Channel != "news" || m.Payload != "msg"+strconv.Itoa(i) {
					t.Fatalf("message %d: %+v %v", i, m, err)
				}
				pm, err := psub.ReceiveMessage(ctx)
				if err != nil || pm.Pattern != "n*" || pm.Channel != "news" || pm.Payload != "msg"+strconv.Itoa(i) {
					t.Fatalf("pattern message %d: %+v %v", i, pm, err)
				}
			}
			if n, err := rdb.Publish(ctx, "other", "x").Result(); err != nil || n != 0 {
				t.Fatalf("PUBLISH to nobody = %d, %v", n, err)
			}
		})
	}
}

// SIGTERM: the process exits 0, replies to commands it already received
// are delivered whole, and idle connections do not hold it up.
func TestSIGTERM(t *testing.T) {
	p := startShoal(t)
	idle, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// A large pipeline; once its first reply is back, the server is
	// working through it when the signal arrives.
	const n = 50000
	var req bytes.Buffer
	for i := 0; i < n; i++ {
		req.WriteString("*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n")
	}
	go c.Write(req.Bytes())
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil || line != ":1\r\n" {
		t.Fatalf("first reply %q, %v", line, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Every reply that arrives is complete and in order: :2, :3, ...
	got := 1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if line != "" {
				t.Fatalf("torn reply %q after %d replies: %v", line, got, err)
			}
			break
		}
		if want := ":" + strconv.Itoa(got+1) + "\r\n"; line != want {
			t.Fatalf("reply %d = %q, want %q", got+1, line, want)
		}
		got++
	}
	t.Logf("%d of %d pipelined replies delivered before the server closed", got, n)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("shoal still running 15 s after SIGTERM\n%s", p.log.String())
	}
	if p.err != nil {
		t.Fatalf("shoal exited with %v after SIGTERM\n%s", p.err, p.log.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// SIGTERM with nothing in flight: a plain, quick, clean exit.
func TestSIGTERMIdle(t *testing.T) {
	p := startShoal(t)
	rdb := newClient(t, p, 2)
	if err := rdb.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("shoal still running 15 s after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit: %v\n%s", p.err, p.log.String())
	}
}

func TestRedisBenchmark(t *testing.T) {
	bench := needTool(t, "redis-benchmark")
	p := startShoal(t)
	cmd := exec.Command(bench, "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-q", "-n", "2000", "-t", "set,get,incr,mset", "-P", "4")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	text := string(out)
	for _, test := range []string{"SET", "GET", "INCR", "MSET (10 keys)"} {
		if !strings.Contains(text, test+": ") || !strings.Contains(text, "requests per second") {
			t.Errorf("redis-benchmark output lacks a result for %s:\n%s", test, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "ERR") || strings.Contains(strings.ToLower(line), "error") {
			t.Errorf("redis-benchmark reported an error: %s", line)
		}
	}
	// The benchmark's writes are really there.
	if got := cli(t, p, "", "GET", "counter:__rand_int__"); got != "2000" {
		t.Errorf("INCR counter after the benchmark = %q, want 2000", got)
	}
}

// SIGTERM while a large reply is still being written: the client gets all
// of it before the connection closes.
func TestSIGTERMLargeReply(t *testing.T) {
	p := startShoal(t)
	rdb := newClient(t, p, 2)
	const size = 64 << 20
	if err := rdb.Set(context.Background(), "big", strings.Repeat("x", size), 0).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("GET big\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(c, 1024)
	header, err := r.ReadString('\n')
	if err != nil || header != "$"+strconv.Itoa(size)+"\r\n" {
		t.Fatalf("header %q, %v", header, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if n != size+2 {
		t.Fatalf("got %d of %d reply bytes after SIGTERM (%v)", n, size+2, err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("shoal still running 15 s after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit: %v\n%s", p.err, p.log.String())
	}
}
