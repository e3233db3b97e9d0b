package proxy_test

import (
	"bufio"
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mcDo sends raw memcached requests and reads until the reply ends with want's length of lines.
func mcRoundTrip(t *testing.T, c net.Conn, r *bufio.Reader, req string, lines int) string {
	t.Helper()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for i := 0; i < lines; i++ {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: after %q: %v", req, b.String(), err)
		}
		b.WriteString(l)
	}
	return b.String()
}

func TestProxyMemcache(t *testing.T) {
	c := newTCluster(t, 3, 0, nil)
	p := c.startProxy(10 * time.Second)
	nc, err := net.Dial("tcp", p.MCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	ids := c.shardIDs()
	var keys []string
	for i := 0; i < 2; i++ {
		for _, id := range ids {
			keys = append(keys, c.keyIn(id, "mc"+strconv.Itoa(i)+"-"))
		}
	}
	for i, k := range keys {
		if got := mcRoundTrip(t, nc, r, "set "+k+" "+strconv.Itoa(i)+" 0 2\r\nv"+strconv.Itoa(i)+"\r\n", 1); got != "STORED\r\n" {
			t.Fatalf("set %s: %q", k, got)
		}
	}
	// noreply gets nothing back; the next request's reply comes in order.
	if got := mcRoundTrip(t, nc, r, "set nr 0 0 1 noreply\r\nx\r\nget nr\r\n", 3); got != "VALUE nr 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("noreply then get: %q", got)
	}
	// Multi-get across every shard, with a miss and a repeat, in order.
	req := "get " + strings.Join(keys, " ") + " missing " + keys[0] + "\r\n"
	var want strings.Builder
	for i, k := range append(keys, keys[0]) {
		if i == len(keys) {
			i = 0
		}
		want.WriteString("VALUE " + k + " " + strconv.Itoa(i) + " 2\r\nv" + strconv.Itoa(i) + "\r\n")
	}
	want.WriteString("END\r\n")
	if got := mcRoundTrip(t, nc, r, req, 2*(len(keys)+1)+1); got != want.String() {
		t.Fatalf("multi-get:\n got %q\nwant %q", got, want.String())
	}
	got := mcRoundTrip(t, nc, r, "gets "+keys[0]+" "+keys[1]+"\r\n", 5)
	if !strings.HasPrefix(got, "VALUE "+keys[0]+" 0 2 ") || !strings.HasSuffix(got, "END\r\n") {
		t.Fatalf("gets: %q", got)
	}
	for _, tc := range []struct{ req, want string }{
		{"incr ctr 1\r\n", "NOT_FOUND\r\n"},
		{"add ctr 0 0 1\r\n5\r\n", "STORED\r\n"},
		{"incr ctr 3\r\n", "8\r\n"},
		{"decr ctr 2\r\n", "6\r\n"},
		{"append ctr 0 0 1\r\n0\r\n", "STORED\r\n"},
		{"touch ctr 100\r\n", "TOUCHED\r\n"},
		{"delete ctr\r\n", "DELETED\r\n"},
		{"delete ctr\r\n", "NOT_FOUND\r\n"},
		{"version\r\n", "VERSION "},
		{"mn\r\n", "MN\r\n"},
		{"bogus\r\n", "ERROR\r\n"},
	} {
		if got := mcRoundTrip(t, nc, r, tc.req, 1); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.req, got, tc.want)
		}
	}
	if got := mcRoundTrip(t, nc, r, "flush_all\r\nget "+keys[0]+"\r\n", 2); got != "OK\r\nEND\r\n" {
		t.Errorf("flush_all: %q", got)
	}

	// Meta commands, routed by key to every shard.
	for i, k := range keys {
		v := "m" + strconv.Itoa(i)
		for _, tc := range []struct {
			req   string
			lines int
			want  string
		}{
			{"ms " + k + " 2 T0 F5\r\n" + v + "\r\n", 1, "HD\r\n"},
			{"mg " + k + " v f k\r\n", 2, "VA 2 f5 k" + k + "\r\n" + v + "\r\n"},
			{"mg " + k + " s v Oop\r\n", 2, "VA 2 s2 Oop\r\n" + v + "\r\n"},
			{"ma " + k + "n N0 J10 v\r\n", 2, "VA 2\r\n10\r\n"},
			{"ma " + k + "n D5 v\r\n", 2, "VA 2\r\n15\r\n"},
			{"md " + k + "\r\n", 1, "HD\r\n"},
			{"mg " + k + " v\r\n", 1, "EN\r\n"},
			{"ms " + k + " 1 q\r\nx\r\nmg " + k + " v q\r\n", 2, "VA 1\r\nx\r\n"}, // quiet: a hit is shown
			{"md " + k + " q\r\nmg " + k + " v q\r\nmn\r\n", 1, "MN\r\n"},         // HD and EN are not
			{"mg " + k + " v\r\n", 1, "EN\r\n"},
			{"md " + k + "zz q\r\nmn\r\n", 2, "NF\r\nMN\r\n"}, // a quiet miss of md is reported
		} {
			if got := mcRoundTrip(t, nc, r, tc.req, tc.lines); got != tc.want {
				t.Errorf("%q: got %q, want %q", tc.req, got, tc.want)
			}
		}
	}
	// A base64 key routes by its decoded name.
	k := keys[1]
	b64 := base64.StdEncoding.EncodeToString([]byte(k))
	if got := mcRoundTrip(t, nc, r, "ms "+b64+" 1 b\r\nz\r\nget "+k+"\r\n", 4); got != "HD\r\nVALUE "+k+" 0 1\r\nz\r\nEND\r\n" {
		t.Errorf("base64 ms: %q", got)
	}
	if got := mcRoundTrip(t, nc, r, "mg "+k+" v zz\r\n", 1); !strings.HasPrefix(got, "CLIENT_ERROR") {
		t.Errorf("bad flag: %q", got)
	}
}
