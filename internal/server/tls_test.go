package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"shoal/internal/config"
	"shoal/internal/resp"
	"shoal/internal/server"
	"shoal/internal/testcert"
	tu "shoal/internal/testutil"
	"shoal/internal/tlsconf"
)

func tlsClient(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	c, err := tlsconf.Client(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLSPort: the tls-port serves RESP over TLS with verified client
// certificates (tls-auth-clients yes), next to the plaintext port.
func TestTLSPort(t *testing.T) {
	certs := testcert.New(t)
	port := tu.FreePort(t)
	n := tu.StartServer(t, "tls-port", strconv.Itoa(port), "tls-cert-file", certs.ServerCert,
		"tls-key-file", certs.ServerKey, "tls-ca-cert-file", certs.CA)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if got := n.Srv.TLSAddrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("TLSAddrs = %v", got)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsClient(t, certs.CA, certs.ClientCert, certs.ClientKey)})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "over tls", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The same keyspace as the plaintext port.
	steps(t, tu.Dial(t, n.Addr), "GET k", `"over tls"`)
	big := strings.Repeat("x", 1<<20)
	if err := rdb.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "big").Result(); err != nil || v != big {
		t.Fatalf("1 MiB value over TLS: len %d, %v", len(v), err)
	}

	// CLIENT INFO shows the TLS client's own address, not the relay's.
	tc, err := tls.Dial("tcp", addr, tlsClient(t, certs.CA, certs.ClientCert, certs.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write(resp.AppendCommand(nil, "CLIENT", "INFO"))
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := resp.ReadReply(bufio.NewReader(tc), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "addr=" + tc.LocalAddr().String() + " "; !strings.Contains(r.Str, want) {
		t.Errorf("CLIENT INFO over TLS = %q, want %s", r.Str, want)
	}

	// A client that sends its commands and closes its write side gets
	// every reply, then EOF (as on the plaintext port).
	hc, err := tls.Dial("tcp", addr, tlsClient(t, certs.CA, certs.ClientCert, certs.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.Write([]byte("SET hc 1\r\nINCR hc\r\n"))
	if err := hc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	hc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(hc); err != nil || string(b) != "+OK\r\n:2\r\n" {
		t.Errorf("half-closed TLS client got %q, %v", b, err)
	}

	// Without a client certificate, or trusting another CA: refused.
	noCert := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsClient(t, certs.CA, "", ""), MaxRetries: -1})
	defer noCert.Close()
	if err := noCert.Ping(ctx).Err(); err == nil {
		t.Error("a client without a certificate was served")
	}
	wrongCA := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsClient(t, certs.OtherCA, certs.ClientCert, certs.ClientKey), MaxRetries: -1})
	defer wrongCA.Close()
	if err := wrongCA.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v", err)
	}
	// Plaintext on the TLS port gets nothing served.
	raw := tu.Dial(t, addr)
	raw.Send([]byte("PING\r\n"))
	if r, err := raw.Read(); err == nil && r.String() == "PONG" {
		t.Error("plaintext served on the TLS port")
	}
}

// TestTLSWithPassword: tls-auth-clients no, requirepass and ACL users
// over TLS (go-redis with Username/Password and TLS).
func TestTLSWithPassword(t *testing.T) {
	certs := testcert.New(t)
	port := tu.FreePort(t)
	tu.StartServer(t, "tls-port", strconv.Itoa(port), "tls-cert-file", certs.ServerCert,
		"tls-key-file", certs.ServerKey, "tls-auth-clients", "no", "requirepass", "pw",
		"user", "app on >apw ~app:* +@all")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsClient(t, certs.CA, "", ""), MaxRetries: -1})
	defer anon.Close()
	if err := anon.Get(ctx, "app:x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("no password over TLS: %v", err)
	}
	app := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tlsClient(t, certs.CA, "", ""), Username: "app", Password: "apw", Protocol: 3})
	defer app.Close()
	if err := app.Set(ctx, "app:x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := app.Set(ctx, "x", "1", 0).Err(); err == nil || err.Error() != "NOPERM No permissions to access a key" {
		t.Errorf("ACL over TLS: %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	certs := testcert.New(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-port", "0"}, ""},
		{[]string{"--tls-cert-file", certs.ServerCert}, "needs a certificate and a key file"},
		{[]string{"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey}, "needs a CA file"},
		{[]string{"--tls-cert-file", certs.ServerKey, "--tls-key-file", certs.ServerKey, "--tls-auth-clients", "no"}, "load TLS certificate"},
	} {
		cfg := config.Default()
		args := append([]string{"--port", strconv.Itoa(tu.FreePort(t)), "--bind", "127.0.0.1", "--dir", t.TempDir()}, tc.args...)
		if tc.want != "" {
			args = append(args, "--tls-port", strconv.Itoa(tu.FreePort(t)))
		}
		if err := cfg.ParseArgs(args); err != nil {
			t.Fatal(err)
		}
		s, err := server.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.Start(ctx)
		cancel()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			}
			s.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: Start = %v, want %q", tc.args, err, tc.want)
			if err == nil {
				s.Close()
			}
		}
	}
}

// TestTLSReplication: a replica with tls-replication follows its primary
// through the primary's tls-port, presenting its certificate (the
// primary requires client certificates); pointed at the plaintext port
// instead, its TLS handshake fails and the link stays down.
func TestTLSReplication(t *testing.T) {
	certs := testcert.New(t)
	tlsArgs := func(port int) []string {
		return []string{"tls-port", strconv.Itoa(port), "tls-cert-file", certs.ServerCert, "tls-key-file", certs.ServerKey,
			"tls-ca-cert-file", certs.CA, "tls-replication", "yes"}
	}
	pport := tu.FreePort(t)
	p := tu.StartServer(t, append(tlsArgs(pport), "requirepass", "pw")...)
	r := tu.StartServer(t, append(tlsArgs(tu.FreePort(t)), "masterauth", "pw", "replicaof", "127.0.0.1 "+strconv.Itoa(pport))...)
	_, plainPort, _ := strings.Cut(p.Addr, ":")
	bad := tu.StartServer(t, append(tlsArgs(tu.FreePort(t)), "masterauth", "pw", "replicaof", "127.0.0.1 "+plainPort)...)
	pc := tu.Dial(t, p.Addr)
	steps(t, pc, "AUTH pw", "OK", "SET k over-tls", "OK")
	rc := tu.Dial(t, r.Addr)
	waitUntil(t, "the replica to sync over TLS", func() bool {
		return infoField(t, rc, "replication", "master_link_status") == "up" && rc.Do("GET", "k") == `"over-tls"`
	})
	steps(t, pc, "SET k2 v2", "OK")
	waitUntil(t, "the stream over TLS", func() bool { return rc.Do("GET", "k2") == `"v2"` })
	bc := tu.Dial(t, bad.Addr)
	wantInfo(t, bc, "replication", "master_link_status", "down")
	wantInfo(t, pc, "replication", "connected_slaves", "1")
}

// TestMemcachedTLSPort: memcached-tls-port serves the memcached protocol
// over TLS (gomemcache with a TLS dialer, and raw meta commands) on the
// same keyspace as the RESP port; a client without a certificate is
// refused; memcached-tls-port without memcached-port is a config error.
func TestMemcachedTLSPort(t *testing.T) {
	certs := testcert.New(t)
	mcPort, mcTLSPort := tu.FreePort(t), tu.FreePort(t)
	n := tu.StartServer(t, "memcached-port", strconv.Itoa(mcPort), "memcached-tls-port", strconv.Itoa(mcTLSPort),
		"tls-cert-file", certs.ServerCert, "tls-key-file", certs.ServerKey, "tls-ca-cert-file", certs.CA)
	addr := "127.0.0.1:" + strconv.Itoa(mcTLSPort)
	if got := n.Srv.MemcachedTLSAddrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("MemcachedTLSAddrs = %v", got)
	}
	if got := n.Srv.TLSAddrs(); len(got) != 0 {
		t.Fatalf("TLSAddrs without tls-port = %v", got)
	}
	cc := tlsClient(t, certs.CA, certs.ClientCert, certs.ClientKey)
	mc := memcache.New(addr)
	mc.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		d := tls.Dialer{Config: cc}
		return d.DialContext(ctx, network, address)
	}
	if err := mc.Set(&memcache.Item{Key: "mk", Value: []byte("over tls")}); err != nil {
		t.Fatal(err)
	}
	if it, err := mc.Get("mk"); err != nil || string(it.Value) != "over tls" {
		t.Fatalf("get over TLS: %v %v", it, err)
	}
	// The RESP port sees the same key.
	steps(t, tu.Dial(t, n.Addr), "GET mk", `"over tls"`)
	// Raw meta commands over TLS.
	tc, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	tc.Write([]byte("ms m2 2\r\nhi\r\nmg m2 v\r\nmn\r\n"))
	br := bufio.NewReader(tc)
	var got []string
	for len(got) == 0 || got[len(got)-1] != "MN" {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("meta over TLS: %q, %v", got, err)
		}
		got = append(got, strings.TrimRight(line, "\r\n"))
	}
	if strings.Join(got, "|") != "HD|VA 2|hi|MN" {
		t.Errorf("meta over TLS: %q", got)
	}
	// No client certificate: refused.
	bad := memcache.New(addr)
	bad.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		d := tls.Dialer{Config: tlsClient(t, certs.CA, "", "")}
		return d.DialContext(ctx, network, address)
	}
	if _, err := bad.Get("mk"); err == nil {
		t.Error("a memcached client without a certificate was served")
	}
	// memcached-tls-port needs memcached-port.
	cfg := config.Default()
	err = cfg.ParseArgs([]string{"--port", strconv.Itoa(tu.FreePort(t)), "--dir", t.TempDir(), "--memcached-tls-port", strconv.Itoa(tu.FreePort(t))})
	if err == nil || !strings.Contains(err.Error(), "needs memcached-port") {
		t.Errorf("memcached-tls-port without memcached-port: %v", err)
	}
}
