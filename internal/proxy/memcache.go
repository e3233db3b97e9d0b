package proxy

import (
	"bufio"
	"net"
)

func readMCReply(r *bufio.Reader, dst []byte, c *call) ([]byte, error) { return dst, errBadReply }

func (p *Proxy) serveMemcache(nc net.Conn) {}
