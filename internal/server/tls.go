package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"shoal/internal/config"
	"shoal/internal/tlsconf"
)

// The TLS client port (tls-port). gnet's event loops read plaintext from
// the socket, so TLS connections are terminated here: a goroutine pair
// per connection decrypts into a loopback connection to the node's own
// RESP port and encrypts the replies back. The event loop then serves
// the connection like any other, with two differences OnOpen applies:
// CLIENT LIST shows the TLS client's address, and protected-mode judges
// that address (not the loopback relay's). The relay binds its local
// port before it connects and records it in peers, so OnOpen always
// finds the entry. Cost: two copies and one more socket per TLS
// connection; the plaintext port is unaffected.
//
// Goroutines: one accept loop per listener, two copiers per connection;
// Close stops them all.

type tlsFront struct {
	s      *Server
	cfg    *tls.Config
	target *net.TCPAddr // the node's own RESP listener the relay dials
	lns    []net.Listener
	peers  sync.Map // relay's local "ip:port" → net.Addr of the TLS client
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// startTLS listens on tls-port when it is set (after the event loops
// run), and loads the client side for tls-replication.
func (s *Server) startTLS() error {
	var port int
	var cert, key, ca, auth string
	var peers bool
	s.cfg.Read(func(c *config.Config) {
		port, cert, key, ca, auth = c.TLSPort, c.TLSCertFile, c.TLSKeyFile, c.TLSCACertFile, c.TLSAuthClients
		peers = c.TLSReplication
	})
	if peers {
		// Node to node: trust tls-ca-cert-file, and present this node's
		// certificate (peers may require client certificates).
		if ca == "" {
			return errors.New("tls-replication needs tls-ca-cert-file (the CA of the other nodes' certificates)")
		}
		pc, err := tlsconf.Client(ca, cert, key)
		if err != nil {
			return fmt.Errorf("tls-replication: %w", err)
		}
		s.peerTLS.Store(pc)
	}
	var mcPort int
	s.cfg.Read(func(c *config.Config) { mcPort = c.MemcachedTLSPort })
	if port == 0 && mcPort == 0 {
		return nil
	}
	tc, err := tlsconf.Server(cert, key, ca, auth)
	if err != nil {
		if port == 0 {
			return fmt.Errorf("memcached-tls-port: %w", err)
		}
		return fmt.Errorf("tls-port: %w", err)
	}
	if port != 0 {
		f, err := s.startTLSFront("tls-port", port, s.Addrs(), tc)
		if err != nil {
			return err
		}
		s.tls.Store(f)
	}
	if mcPort != 0 {
		// The memcached protocol over TLS, relayed to the plaintext
		// memcached port the same way (memcached 1.6 serves TLS on its
		// port; here it is a port of its own).
		f, err := s.startTLSFront("memcached-tls-port", mcPort, s.MemcachedAddrs(), tc)
		if err != nil {
			if rf := s.tls.Load(); rf != nil {
				rf.close()
			}
			return err
		}
		s.mcTLS.Store(f)
	}
	return nil
}

// startTLSFront listens on port (on the bind addresses) with TLS and
// relays every connection to the first of the plaintext listeners plain.
func (s *Server) startTLSFront(what string, port int, plain []string, tc *tls.Config) (*tlsFront, error) {
	if len(plain) == 0 {
		return nil, fmt.Errorf("%s: no plaintext listener to relay to", what)
	}
	host, p, _ := net.SplitHostPort(strings.TrimPrefix(plain[0], "tcp://"))
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return nil, fmt.Errorf("%s: bind address %q is not an IP", what, host)
	case ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	pn, _ := strconv.Atoi(p)
	if pn == 0 {
		return nil, fmt.Errorf("%s needs its plaintext port too (port 0 is not supported with it): the TLS relay serves through it", what)
	}
	f := &tlsFront{s: s, cfg: tc, target: &net.TCPAddr{IP: ip, Port: pn}, conns: map[net.Conn]struct{}{}}
	for _, a := range s.addrsFor(port) {
		ln, err := net.Listen("tcp", strings.TrimPrefix(a, "tcp://"))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("%s: listen: %w", what, err)
		}
		f.lns = append(f.lns, tls.NewListener(ln, tc))
	}
	for _, ln := range f.lns {
		f.wg.Add(1)
		go f.accept(ln)
	}
	return f, nil
}

// MemcachedTLSAddrs returns the memcached-tls-port listeners' addresses.
func (s *Server) MemcachedTLSAddrs() []string { return s.mcTLS.Load().addrs() }

// dialPeer connects to another node (its primary, a slot move's source):
// over TLS with tls-replication (addr is then the peer's TLS port), else
// plain TCP.
func (s *Server) dialPeer(addr string, timeout time.Duration) (net.Conn, error) {
	pc := s.peerTLS.Load()
	if pc == nil {
		return net.DialTimeout("tcp", addr, timeout)
	}
	if addr == "" {
		return nil, errors.New("tls-replication: the peer serves no tls-port")
	}
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, pc)
	if err != nil {
		return nil, fmt.Errorf("TLS to %s: %w", addr, err)
	}
	return c, nil
}

// peerTLSOn reports whether this node dials its peers over TLS.
func (s *Server) peerTLSOn() bool { return s.peerTLS.Load() != nil }

// tlsAddr is this node's TLS address for the cluster map ("" when off).
func (s *Server) tlsAddr(host string) string {
	f := s.tls.Load()
	if f == nil || len(f.lns) == 0 {
		return ""
	}
	_, port, _ := net.SplitHostPort(f.lns[0].Addr().String())
	return net.JoinHostPort(host, port)
}

// TLSAddrs returns the TLS listeners' addresses (none when tls-port is 0).
func (s *Server) TLSAddrs() []string { return s.tls.Load().addrs() }

// closeTLSFronts stops the tls-port and memcached-tls-port listeners and
// their relays.
func (s *Server) closeTLSFronts() {
	for _, f := range [...]*tlsFront{s.tls.Load(), s.mcTLS.Load()} {
		if f != nil {
			f.close()
		}
	}
}

// addrs lists the front's listener addresses (none for a nil front).
func (f *tlsFront) addrs() []string {
	if f == nil {
		return nil
	}
	out := make([]string, len(f.lns))
	for i, ln := range f.lns {
		out[i] = ln.Addr().String()
	}
	return out
}

func (f *tlsFront) accept(ln net.Listener) {
	defer f.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.serve(c.(*tls.Conn))
	}
}

func (f *tlsFront) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *tlsFront) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// serve completes the handshake, then relays tc to the RESP port.
func (f *tlsFront) serve(tc *tls.Conn) {
	defer f.wg.Done()
	defer f.untrack(tc)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		f.s.log.Debug("TLS handshake failed", "client", tc.RemoteAddr().String(), "err", err)
		return
	}
	_ = tc.SetDeadline(time.Time{})
	var key string
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		// Bind the local port now and record it before connecting: the
		// event loop's OnOpen may run before Dial returns.
		var err error
		cerr := rc.Control(func(fd uintptr) {
			var sa syscall.Sockaddr
			if ip4 := f.target.IP.To4(); ip4 != nil {
				sa4 := &syscall.SockaddrInet4{}
				copy(sa4.Addr[:], ip4)
				sa = sa4
			} else {
				sa6 := &syscall.SockaddrInet6{}
				copy(sa6.Addr[:], f.target.IP.To16())
				sa = sa6
			}
			if err = syscall.Bind(int(fd), sa); err != nil {
				return
			}
			var got syscall.Sockaddr
			if got, err = syscall.Getsockname(int(fd)); err != nil {
				return
			}
			var local net.TCPAddr
			switch g := got.(type) {
			case *syscall.SockaddrInet4:
				local = net.TCPAddr{IP: net.IP(g.Addr[:]).To16(), Port: g.Port}
			case *syscall.SockaddrInet6:
				local = net.TCPAddr{IP: net.IP(g.Addr[:]), Port: g.Port}
			}
			key = local.String()
			f.peers.Store(key, tc.RemoteAddr())
		})
		if cerr != nil {
			return cerr
		}
		return err
	}}
	pc, err := d.Dial("tcp", f.target.String())
	if key != "" {
		defer f.peers.Delete(key)
	}
	if err != nil {
		f.s.log.Warn("TLS relay cannot reach the RESP port", "addr", f.target.String(), "err", err)
		return
	}
	if !f.track(pc) {
		pc.Close()
		return
	}
	defer f.untrack(pc)
	defer pc.Close()
	done := make(chan struct{})
	go func() {
		// Replies back to the TLS client; the node closing its side
		// (QUIT, CLIENT KILL) ends the TLS connection too.
		_, _ = io.Copy(tc, pc)
		tc.Close()
		close(done)
	}()
	_, _ = io.Copy(pc, tc)
	// The client is done sending (close_notify, or gone): pass the
	// half-close on, so the node answers what it got and then closes, as
	// for a plaintext client that shuts down its write side.
	if tcp, ok := pc.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	} else {
		pc.Close()
	}
	<-done
}

// peer returns the TLS client's address for a relay connection's remote
// address, or nil.
func (f *tlsFront) peer(relay net.Addr) net.Addr {
	if f == nil || relay == nil {
		return nil
	}
	if v, ok := f.peers.Load(relay.String()); ok {
		return v.(net.Addr)
	}
	return nil
}

func (f *tlsFront) close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	for _, ln := range f.lns {
		ln.Close()
	}
	f.wg.Wait()
}
