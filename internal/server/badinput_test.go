package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// bystander is a well-behaved client that keeps writing and reading its
// own keys on another connection while a test misbehaves on its own.
type bystander struct {
	stop chan struct{}
	done chan struct{}
	ops  atomic.Int64
	err  error
}

func startBystander(t *testing.T, addr string) *bystander {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b := &bystander{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer c.Close()
		r := bufio.NewReader(c)
		do := func(want string, args ...string) error {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(resp.AppendCommand(nil, args...)); err != nil {
				return err
			}
			rp, err := resp.ReadReply(r, 0)
			if err != nil {
				return fmt.Errorf("%q: %w", args, err)
			}
			if rp.String() != want {
				return fmt.Errorf("%q: got %s, want %s", args, rp, want)
			}
			return nil
		}
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			default:
			}
			k, v := fmt.Sprintf("bystander:%d", i%100), fmt.Sprintf("v%d", i)
			if err := do("OK", "SET", k, v); err != nil {
				b.err = err
				return
			}
			if err := do(fmt.Sprintf("%q", v), "GET", k); err != nil {
				b.err = err
				return
			}
			b.ops.Add(1)
		}
	}()
	return b
}

// finish stops the bystander and fails the test if it saw a wrong reply.
func (b *bystander) finish(t *testing.T) {
	t.Helper()
	close(b.stop)
	<-b.done
	if b.err != nil {
		t.Fatalf("bystander client: %v", b.err)
	}
	if b.ops.Load() == 0 {
		t.Fatalf("bystander client made no progress")
	}
}

// readAll reads what the server sends until it closes the connection
// (closed=true) or stays silent for d.
func readAll(c net.Conn, d time.Duration) (data string, closed bool) {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return sb.String(), false
			}
			return sb.String(), true
		}
	}
}

const binValue = "a\r\nb\x00c\r\n\r\n$3\r\n*1\r\n\xff\xfe"

func TestBadInput(t *testing.T) {
	n := tu.StartServer(t)
	setup := tu.Dial(t, n.Addr)
	binKey := "bin\r\n\x00key"
	tu.Run(t, setup, []tu.Case{
		{Cmd: []string{"SET", "pre:plain", "value"}, Want: "OK"},
		{Cmd: []string{"SET", binKey, binValue}, Want: "OK"},
		{Cmd: []string{"SET", "pre:ttl", "v", "EX", "100000"}, Want: "OK"},
	})
	by := startBystander(t, n.Addr)

	// Malformed frames: the exact error, then the server closes the connection.
	protoErrs := []struct{ name, send, want string }{
		{"non-numeric multibulk", "*x\r\n", "invalid multibulk length"},
		{"multibulk over limit", "*16777217\r\n", "invalid multibulk length"},
		{"multibulk overflow", "*99999999999999999999999\r\n", "invalid multibulk length"},
		{"negative bulk", "*2\r\n$3\r\nGET\r\n$-5\r\n", "invalid bulk length"},
		{"null bulk in request", "*2\r\n$3\r\nGET\r\n$-1\r\n", "invalid bulk length"},
		{"non-numeric bulk", "*2\r\n$3\r\nGET\r\n$abc\r\n", "invalid bulk length"},
		{"bulk over proto-max-bulk-len", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n", "invalid bulk length"},
		{"bulk overflow", "*2\r\n$3\r\nGET\r\n$99999999999999999999\r\n", "invalid bulk length"},
		{"not a bulk", "*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"},
		{"nested array", "*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n", "expected '$', got '*'"},
		{"deeply nested array", strings.Repeat("*1\r\n", 10000), "expected '$', got '*'"},
		{"unbalanced double quotes", "SET k \"abc\r\n", "unbalanced quotes in request"},
		{"unbalanced single quotes", "SET k 'abc\r\n", "unbalanced quotes in request"},
		{"quote glued to a word", "SET k \"abc\"def\r\n", "unbalanced quotes in request"},
		{"too big inline", strings.Repeat("x", 70<<10), "too big inline request"},
		{"valid command then garbage", "*1\r\n$4\r\nPING\r\n*1\r\nx", "expected '$', got 'x'"},
	}
	for _, tc := range protoErrs {
		t.Run(tc.name, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Send([]byte(tc.send))
			got, closed := readAll(c.C, 10*time.Second)
			want := "-ERR Protocol error: " + tc.want + "\r\n"
			if strings.HasPrefix(tc.send, "*1\r\n$4\r\nPING\r\n") {
				want = "+PONG\r\n" + want
			}
			if got != want || !closed {
				t.Fatalf("got %q closed=%v, want %q and close", got, closed, want)
			}
		})
	}

	// Command errors keep the connection open.
	t.Run("unknown command and wrong arity", func(t *testing.T) {
		c := tu.Dial(t, n.Addr)
		long := strings.Repeat("y", 200)
		tu.Run(t, c, []tu.Case{
			{Cmd: []string{"FOO", "a", "b"}, Want: "(error) ERR unknown command 'FOO', with args beginning with: 'a' 'b' "},
			{Cmd: []string{"foo"}, Want: "(error) ERR unknown command 'foo', with args beginning with: "},
			{Cmd: []string{"FOO", long, "b"}, Want: "(error) ERR unknown command 'FOO', with args beginning with: '" + long[:128] + "' "},
			{Cmd: []string{"FOO", "a\r\nb"}, Want: "(error) ERR unknown command 'FOO', with args beginning with: 'a  b' "},
			{Cmd: []string{""}, Want: "(error) ERR unknown command '', with args beginning with: "},
			{Cmd: []string{"GET"}, Want: "(error) ERR wrong number of arguments for 'get' command"},
			{Cmd: []string{"GET", "a", "b"}, Want: "(error) ERR wrong number of arguments for 'get' command"},
			{Cmd: []string{"set", "k"}, Want: "(error) ERR wrong number of arguments for 'set' command"},
			{Cmd: []string{"MSET", "a"}, Want: "(error) ERR wrong number of arguments for 'mset' command"},
			{Cmd: []string{"PING"}, Want: "PONG"},
		})
		c.Send([]byte("BAR x 'y z'\r\nGET\r\nPING\r\n"))
		for _, want := range []string{
			"(error) ERR unknown command 'BAR', with args beginning with: 'x' 'y z' ",
			"(error) ERR wrong number of arguments for 'get' command",
			"PONG",
		} {
			rp, err := c.Read()
			if err != nil || rp.String() != want {
				t.Fatalf("got %s (%v), want %s", rp, err, want)
			}
		}
	})

	t.Run("inline commands with quotes", func(t *testing.T) {
		c := tu.Dial(t, n.Addr)
		c.Send([]byte("SET \"inline key\" \"a\\r\\nb\\x00\\xff\"\r\n" +
			"GET 'inline key'\n" +
			"\r\n\r\n" + // empty lines are skipped
			"ECHO 'it\\'s'\r\n" +
			"  ECHO   \"\"  \r\n" +
			"ECHO a\vb\r\n" +
			"*1\r\n$4\r\nPING\r\nPING\r\n"))
		for _, want := range []string{"OK", `"a\r\nb\x00\xff"`, `"it's"`, `""`, `"a\vb"`, "PONG", "PONG"} {
			rp, err := c.Read()
			if err != nil || rp.String() != want {
				t.Fatalf("got %s (%v), want %s", rp, err, want)
			}
		}
		if got := c.Do("GET", "inline key"); got != `"a\r\nb\x00\xff"` {
			t.Fatalf("multibulk GET of the inline-set key: %s", got)
		}
	})

	t.Run("binary keys and values", func(t *testing.T) {
		c := tu.Dial(t, n.Addr)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		k, v := "k\x00\r\n"+string(all), string(all)+"\r\n"+string(all)
		q := func(s string) string { return fmt.Sprintf("%q", s) }
		tu.Run(t, c, []tu.Case{
			{Cmd: []string{"SET", k, v}, Want: "OK"},
			{Cmd: []string{"GET", k}, Want: q(v)},
			{Cmd: []string{"STRLEN", k}, Want: fmt.Sprintf("(integer) %d", len(v))},
			{Cmd: []string{"APPEND", k, "\r\n\x00"}, Want: fmt.Sprintf("(integer) %d", len(v)+3)},
			{Cmd: []string{"GET", k}, Want: q(v + "\r\n\x00")},
			{Cmd: []string{"MSET", "\x00", "\r\n", "\r\n", "\x00"}, Want: "OK"},
			{Cmd: []string{"MGET", "\x00", "\r\n", k}, Want: "[" + q("\r\n") + " " + q("\x00") + " " + q(v+"\r\n\x00") + "]"},
			{Cmd: []string{"EXISTS", k, "\x00", "\r\n", "\r"}, Want: "(integer) 3"},
			{Cmd: []string{"RENAME", k, "\r\n\r\n"}, Want: "OK"},
			{Cmd: []string{"GET", "\r\n\r\n"}, Want: q(v + "\r\n\x00")},
			{Cmd: []string{"DEL", "\r\n\r\n", "\x00", "\r\n"}, Want: "(integer) 3"},
		})
	})

	t.Run("slowloris", func(t *testing.T) {
		c := tu.Dial(t, n.Addr)
		cmd := resp.AppendCommand(nil, "SET", "slow\r\nkey", "slow\x00value\r\n")
		cmd = append(cmd, "GET \"slow\\r\\nkey\"\r\n"...)
		for i := range cmd {
			c.Send(cmd[i : i+1])
			// Make the bytes arrive in separate reads; correctness does
			// not depend on how they are grouped.
			time.Sleep(200 * time.Microsecond)
		}
		for _, want := range []string{"OK", `"slow\x00value\r\n"`} {
			rp, err := c.Read()
			if err != nil || rp.String() != want {
				t.Fatalf("got %s (%v), want %s", rp, err, want)
			}
		}
		// A large value trickling in small pieces.
		val := strings.Repeat("0123456789", 30000)
		cmd = resp.AppendCommand(nil, "SET", "slow:big", val)
		for i := 0; i < len(cmd); i += 1000 {
			c.Send(cmd[i:min(i+1000, len(cmd))])
		}
		if rp, err := c.Read(); err != nil || rp.String() != "OK" {
			t.Fatalf("big slow SET: %s %v", rp, err)
		}
		if got := c.Do("STRLEN", "slow:big"); got != "(integer) 300000" {
			t.Fatalf("STRLEN: %s", got)
		}
	})

	t.Run("truncated frame then close", func(t *testing.T) {
		for _, partial := range []string{
			"*3\r\n$3\r\nSET\r\n$5\r\ntrunc\r\n$5\r\nval",
			"*3\r\n$3\r\nSET\r\n$5\r\ntrunc\r\n$5\r\n",
			"*3\r\n$3\r\nSET\r\n$5\r\ntrunc\r\n$5",
			"*3\r\n$3\r\nSET\r\n$5\r\ntr",
			"*3\r\n",
			"*3",
			"SET trunc value",
		} {
			c := tu.Dial(t, n.Addr)
			c.Send([]byte(partial))
			c.C.(*net.TCPConn).CloseWrite()
			got, closed := readAll(c.C, 10*time.Second)
			if got != "" || !closed {
				t.Fatalf("%q: got %q closed=%v, want a silent close", partial, got, closed)
			}
		}
		if got := setup.Do("EXISTS", "trunc"); got != "(integer) 0" {
			t.Fatalf("a truncated SET was executed: EXISTS trunc = %s", got)
		}
	})

	t.Run("wide array announced but not sent", func(t *testing.T) {
		c := tu.Dial(t, n.Addr)
		c.Send([]byte("*1000000\r\n$3\r\nSET\r\n$4\r\nwide\r\n$1\r\nv\r\n"))
		// The server waits for the rest; meanwhile others are served.
		if got := setup.Do("PING"); got != "PONG" {
			t.Fatalf("PING: %s", got)
		}
		c.C.Close()
		other := tu.Dial(t, n.Addr)
		other.Send([]byte("*16000000\r\n"))
		if got := setup.Do("EXISTS", "wide"); got != "(integer) 0" {
			t.Fatalf("EXISTS wide: %s", got)
		}
	})

	by.finish(t)
	tu.Run(t, setup, []tu.Case{
		{Cmd: []string{"GET", "pre:plain"}, Want: `"value"`},
		{Cmd: []string{"GET", binKey}, Want: fmt.Sprintf("%q", binValue)},
		{Cmd: []string{"GET", "pre:ttl"}, Want: `"v"`},
	})
	if ttl := setup.Do("TTL", "pre:ttl"); ttl != "(integer) 100000" && ttl != "(integer) 99999" {
		t.Fatalf("TTL pre:ttl: %s", ttl)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// writeUntilClosed writes chunk repeatedly up to total bytes and returns
// how much was written before the server closed the connection (or total).
func writeUntilClosed(c net.Conn, chunk []byte, total int) int {
	sent := 0
	for sent < total {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			return sent
		}
	}
	return sent
}

// An announced huge bulk is not allocated up front: memory follows what
// the client actually sends.
func TestBadInputMemoryBounded(t *testing.T) {
	n := tu.StartServer(t)
	setup := tu.Dial(t, n.Addr)
	setup.Do("SET", "pre", "v")
	by := startBystander(t, n.Addr)
	before := heapInUse()
	var conns []*tu.Conn
	for i := 0; i < 4; i++ {
		c := tu.Dial(t, n.Addr)
		c.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\n"))
		if sent := writeUntilClosed(c.C, make([]byte, 64<<10), 4<<20); sent != 4<<20 {
			t.Fatalf("connection %d closed after %d bytes", i, sent)
		}
		conns = append(conns, c)
	}
	// A wide array is not preallocated either.
	for i := 0; i < 4; i++ {
		c := tu.Dial(t, n.Addr)
		c.Send([]byte("*16000000\r\n$3\r\nSET\r\n"))
		conns = append(conns, c)
	}
	if got := setup.Do("GET", "pre"); got != `"v"` {
		t.Fatalf("GET pre: %s", got)
	}
	after := heapInUse()
	// 4 × 400 MB announced, 16 MB sent: the heap may hold what was sent
	// (buffers grow by doubling), never what was announced.
	if after > before && after-before > 128<<20 {
		t.Fatalf("heap grew by %d MB after 16 MB of partial requests", (after-before)>>20)
	}
	t.Logf("heap in use: before %d MB, after %d MB", before>>20, after>>20)
	for _, c := range conns {
		c.C.Close()
	}
	by.finish(t)
	if got := setup.Do("EXISTS", "k"); got != "(integer) 0" {
		t.Fatalf("EXISTS k: %s", got)
	}
}

// With a low client-query-buffer-limit, a client streaming a huge bulk is
// disconnected once it is over the limit, and nobody else is affected.
func TestQueryBufferLimit(t *testing.T) {
	n := tu.StartServer(t, "client-query-buffer-limit", "2mb")
	setup := tu.Dial(t, n.Addr)
	setup.Do("SET", "pre", "v")
	by := startBystander(t, n.Addr)

	c := tu.Dial(t, n.Addr)
	c.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\n"))
	// The write fails once the server has closed the connection; keep
	// the amount far above the limit and bounded.
	go writeUntilClosed(c.C, make([]byte, 64<<10), 64<<20)
	if got, closed := readAll(c.C, 20*time.Second); !closed || got != "" {
		t.Fatalf("over client-query-buffer-limit: got %q closed=%v, want a close", got, closed)
	}

	// The same when the bytes actually buffered go over the limit: one
	// request with many small arguments that never completes.
	c2 := tu.Dial(t, n.Addr)
	c2.Send([]byte("*100000\r\n$4\r\nMSET\r\n"))
	go writeUntilClosed(c2.C, []byte(strings.Repeat("$20\r\n01234567890123456789\r\n", 100)), 100000*27)
	if got, closed := readAll(c2.C, 20*time.Second); !closed || got != "" {
		t.Fatalf("2.7 MB of a request with a 2 MB limit: got %q closed=%v, want a close", got, closed)
	}

	// Under the limit everything works.
	c3 := tu.Dial(t, n.Addr)
	val := strings.Repeat("v", 1<<20)
	if got := c3.Do("SET", "big", val); got != "OK" {
		t.Fatalf("SET of 1 MB: %s", got)
	}
	if got := c3.Do("STRLEN", "big"); got != "(integer) 1048576" {
		t.Fatalf("STRLEN big: %s", got)
	}
	by.finish(t)
	if got := setup.Do("GET", "pre"); got != `"v"` {
		t.Fatalf("GET pre: %s", got)
	}
}

// Many misbehaving clients at once while well-behaved ones keep working.
func TestBadInputConcurrent(t *testing.T) {
	n := tu.StartServer(t)
	var bys []*bystander
	for i := 0; i < 3; i++ {
		bys = append(bys, startBystander(t, n.Addr))
	}
	payloads := []string{
		"*x\r\n", "*1\r\n$-1\r\n", "SET k \"x\r\n", strings.Repeat("*1\r\n", 1000),
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", "FOO bar\r\n", "GET\r\n",
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				c, err := net.DialTimeout("tcp", n.Addr, 5*time.Second)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				p := payloads[(g+i)%len(payloads)]
				for j := 0; j < len(p); j += 3 {
					if _, err := c.Write([]byte(p[j:min(j+3, len(p))])); err != nil {
						break
					}
				}
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				// A reset is fine (the server closed with input unread);
				// only a server that never closes is not.
				_, err = io.Copy(io.Discard, c)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("payload %q: connection not closed", p)
				}
				c.Close()
			}
		}(g)
	}
	wg.Wait()
	for _, b := range bys {
		b.finish(t)
	}
}
