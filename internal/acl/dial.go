package acl

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"shoal/internal/resp"
)

// Credentials are what a Shoal component sends to a storage node that
// requires a password (a proxy's backend connections, a replica's link,
// a slot move's stream, the manager's status probes). An empty Pass
// sends nothing; an empty User sends AUTH <pass> (the default user).
type Credentials struct {
	User, Pass string
}

// AuthArgs is the AUTH command for c (nil when there is no password).
func (c Credentials) AuthArgs() []string {
	switch {
	case c.Pass == "":
		return nil
	case c.User == "":
		return []string{"AUTH", c.Pass}
	}
	return []string{"AUTH", c.User, c.Pass}
}

// Dial connects to a node (over TLS with tc, to the node's tls-port)
// and authenticates with c before anything else is sent: the node
// answers AUTH alone, so the small reader used here holds no later bytes.
func Dial(addr string, c Credentials, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	var nc net.Conn
	var err error
	if tc != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, tc)
	} else {
		nc, err = net.DialTimeout("tcp", addr, timeout)
	}
	if err != nil || c.Pass == "" {
		return nc, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(resp.AppendCommand(nil, c.AuthArgs()...)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("auth to %s: %w", addr, err)
	}
	r, err := resp.ReadReply(bufio.NewReaderSize(nc, 256), 1<<10)
	if err == nil && r.Kind == '-' {
		err = fmt.Errorf("%s", r.Str)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("auth to %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}
