package server_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	tu "shoal/internal/testutil"
)

// Close delivers replies that are already produced: a large reply being
// written when the server stops arrives whole before the connection ends.
func TestCloseFlushesPendingReplies(t *testing.T) {
	n := tu.StartServer(t)
	const size = 32 << 20
	c := tu.Dial(t, n.Addr)
	if got := c.Do("SET", "big", strings.Repeat("x", size)); got != "OK" {
		t.Fatal(got)
	}
	idle := tu.Dial(t, n.Addr)
	idle.Do("PING")
	c.Send([]byte("GET big\r\n"))
	r := bufio.NewReaderSize(c.C, 1024)
	header, err := r.ReadString('\n')
	if err != nil || header != "$"+strconv.Itoa(size)+"\r\n" {
		t.Fatalf("header %q, %v", header, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Srv.Close() }()
	// Read the rest only once the server is shutting down (it no longer
	// serves new connections), so the reply is still pending then.
	for {
		nc, err := net.DialTimeout("tcp", n.Addr, time.Second)
		if err != nil {
			break // listener gone
		}
		nc.SetDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("PING\r\n"))
		_, err = nc.Read(make([]byte, 16))
		nc.Close()
		if err != nil {
			break // closed without a reply: shutting down
		}
	}
	got, err := io.Copy(io.Discard, r)
	if got != size+2 {
		t.Fatalf("got %d of %d reply bytes across Close (%v)", got, size+2, err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !idle.Closed(5 * time.Second) {
		t.Fatal("an idle client is still connected after Close")
	}
}
