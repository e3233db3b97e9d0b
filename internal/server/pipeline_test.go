package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"shoal/internal/resp"
	tu "shoal/internal/testutil"
)

// The event loop parses requests ahead in batches (to prefetch their keys)
// before running them; these pipelines cross the batch boundaries with
// requests split across writes, a blocking command mid-batch, commands
// with and without keys, and a protocol error after valid requests.

func TestPipelineAcrossBatches(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	var buf []byte
	const total = 53
	for i := 0; i < total; i++ {
		switch i % 4 {
		case 0:
			buf = resp.AppendCommand(buf, "SET", fmt.Sprintf("k%d", i), fmt.Sprint(i))
		case 1:
			buf = resp.AppendCommand(buf, "PING")
		case 2:
			buf = resp.AppendCommand(buf, "INCR", "counter")
		default:
			buf = resp.AppendCommand(buf, "GET", fmt.Sprintf("k%d", i-3))
		}
	}
	// Every split point: the tail of one write is an incomplete request.
	for _, cut := range []int{1, 17, len(buf) / 3, len(buf) - 5} {
		c.Send(buf[:cut])
		time.Sleep(time.Millisecond) // let the server see the partial write on its own (no event to await)
		c.Send(buf[cut:])
		incr := 0
		for i := 0; i < total; i++ {
			r, err := c.Read()
			if err != nil {
				t.Fatalf("cut %d reply %d: %v", cut, i, err)
			}
			var want string
			switch i % 4 {
			case 0:
				want = "OK"
			case 1:
				want = "PONG"
			case 2:
				incr++
				want = "" // checked below
			default:
				want = fmt.Sprintf("%q", fmt.Sprint(i-3))
			}
			if want != "" && r.String() != want {
				t.Fatalf("cut %d reply %d = %s, want %s", cut, i, r.String(), want)
			}
		}
	}
	if got := c.Do("GET", "counter"); got != fmt.Sprintf("%q", fmt.Sprint(4*((total+1)/4))) {
		t.Fatalf("counter = %s", got)
	}
}

func TestPipelineBlockedMidBatch(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	var buf []byte
	buf = resp.AppendCommand(buf, "SET", "before", "1")
	buf = resp.AppendCommand(buf, "BLPOP", "q", "0")
	for i := 0; i < 30; i++ {
		buf = resp.AppendCommand(buf, "INCR", "after")
	}
	c.Send(buf)
	if r, _ := c.Read(); r.String() != "OK" {
		t.Fatalf("first reply %s", r.String())
	}
	// The INCRs behind the BLPOP must not run before it is served.
	other := tu.Dial(t, n.Addr)
	if got := other.Do("GET", "after"); got != "(nil)" {
		t.Fatalf("commands behind a blocked BLPOP ran: after = %s", got)
	}
	other.Do("RPUSH", "q", "x")
	if r, _ := c.Read(); !strings.Contains(r.String(), "x") {
		t.Fatalf("BLPOP reply %s", r.String())
	}
	for i := 1; i <= 30; i++ {
		if r, _ := c.Read(); r.String() != fmt.Sprintf("(integer) %d", i) {
			t.Fatalf("INCR %d = %s", i, r.String())
		}
	}
}

func TestPipelineProtocolErrorAfterValid(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	var buf []byte
	for i := 0; i < 20; i++ {
		buf = resp.AppendCommand(buf, "SET", fmt.Sprintf("p%d", i), "v")
	}
	buf = append(buf, "*2\r\n$3\r\nGET\r\n$x\r\n"...)
	c.Send(buf)
	for i := 0; i < 20; i++ {
		if r, err := c.Read(); err != nil || r.String() != "OK" {
			t.Fatalf("reply %d = %v %v", i, r.String(), err)
		}
	}
	r, err := c.Read()
	if err != nil || !strings.HasPrefix(r.String(), "(error) ERR Protocol error") {
		t.Fatalf("after the valid requests: %s %v", r.String(), err)
	}
	if !c.Closed(5 * time.Second) {
		t.Fatal("connection not closed after a protocol error")
	}
	if got := tu.Dial(t, n.Addr).Do("GET", "p19"); got != `"v"` {
		t.Fatalf("p19 = %s", got)
	}
}
