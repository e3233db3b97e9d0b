package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// clusterClient is one -cluster connection slot: a connection per node it
// has talked to, and its own copy of the slot table (updated by -MOVED).
type clusterClient struct {
	slots []string // slot -> "host:port"
	conns map[string]*clusterConn
}

type clusterConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func (cc *clusterClient) close() {
	for _, c := range cc.conns {
		c.c.Close()
	}
}

func (cc *clusterClient) conn(addr string) (*clusterConn, error) {
	if c := cc.conns[addr]; c != nil {
		return c, nil
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	x := &clusterConn{c: c, rd: bufio.NewReaderSize(c, 64<<10)}
	cc.conns[addr] = x
	return x, nil
}

// maxRedirects bounds one request's MOVED/ASK hops (redis-cli and go-redis
// stop at a handful too).
const maxRedirects = 16

// run is the -cluster loop of one client: one request at a time, as
// replies come or (with -rate) when due.
func (cc *clusterClient) run(pc *pacer, nextKey func() int, deadline, warmEnd time.Time, val []byte, issued, errs, redirects *atomic.Int64, lats *[]int32, count *int64) {
	var kb, req []byte
	for {
		sched := pc.wait()
		if *total > 0 {
			if issued.Add(1) > int64(*total) {
				return
			}
		} else if time.Now().After(deadline) {
			return
		}
		kb = key(kb[:0], nextKey())
		req = req[:0]
		if *op == "get" {
			req = append(req, "*2\r\n$3\r\nGET\r\n"...)
			req = appendBulk(req, kb)
		} else {
			req = append(req, "*3\r\n$3\r\nSET\r\n"...)
			req = appendBulk(req, kb)
			req = appendBulk(req, val)
		}
		t0 := time.Now()
		if !sched.IsZero() {
			t0 = sched // latency from when it was due, as in the main loop
		}
		n, err := cc.do(req, int(keySlot(kb)))
		redirects.Add(int64(n))
		if err != nil {
			if errs.Add(1) == 1 {
				fmt.Println("loadgen:", err)
			}
			var ne net.Error
			if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if t0.After(warmEnd) {
			*lats = append(*lats, int32(time.Since(t0).Microseconds()))
			*count++
		}
	}
}

var askingReq = []byte("*1\r\n$6\r\nASKING\r\n")

// do sends req for slot to its node and follows redirects; it returns how
// many it followed.
func (cc *clusterClient) do(req []byte, slot int) (int, error) {
	addr := cc.slots[slot]
	asking := false
	for hop := 0; ; hop++ {
		if hop > maxRedirects {
			return hop, fmt.Errorf("slot %d: more than %d redirects", slot, maxRedirects)
		}
		c, err := cc.conn(addr)
		if err != nil {
			return hop, err
		}
		if asking {
			if _, err := c.c.Write(askingReq); err != nil {
				return hop, err
			}
			if err := readRESP(c.rd); err != nil {
				return hop, err
			}
		}
		if _, err := c.c.Write(req); err != nil {
			return hop, err
		}
		l, err := c.rd.Peek(1)
		if err != nil {
			return hop, err
		}
		if l[0] != '-' {
			return hop, readRESP(c.rd)
		}
		line, err := c.rd.ReadSlice('\n')
		if err != nil {
			return hop, err
		}
		f := bytes.Fields(line[1:])
		switch {
		case len(f) == 3 && string(f[0]) == "MOVED":
			addr = string(f[2])
			cc.slots[slot] = addr
			asking = false
		case len(f) == 3 && string(f[0]) == "ASK":
			addr = string(f[2])
			asking = true
		case len(f) > 0 && string(f[0]) == "TRYAGAIN":
			time.Sleep(time.Millisecond)
		default:
			return hop, fmt.Errorf("server: %s", bytes.TrimSpace(line))
		}
	}
}

// clusterSlots reads CLUSTER SLOTS from addr into a slot -> "host:port"
// table (the primary of each range).
func clusterSlots(addr string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n")); err != nil {
		return nil, err
	}
	rd := bufio.NewReader(c)
	v, err := readValue(rd)
	if err != nil {
		return nil, err
	}
	ranges, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("reply %v", v)
	}
	slots := make([]string, 16384)
	for _, r := range ranges {
		a, ok := r.([]any)
		if !ok || len(a) < 3 {
			return nil, fmt.Errorf("range %v", r)
		}
		lo, _ := a[0].(int64)
		hi, _ := a[1].(int64)
		n, _ := a[2].([]any)
		if len(n) < 2 || lo < 0 || hi >= 16384 || lo > hi {
			return nil, fmt.Errorf("range %v", r)
		}
		host, _ := n[0].(string)
		port, _ := n[1].(int64)
		for s := lo; s <= hi; s++ {
			slots[s] = net.JoinHostPort(host, strconv.FormatInt(port, 10))
		}
	}
	for s, a := range slots {
		if a == "" {
			return nil, fmt.Errorf("slot %d has no node", s)
		}
	}
	return slots, nil
}

// readValue decodes one RESP2 reply: string, int64, []any or nil.
func readValue(rd *bufio.Reader) (any, error) {
	l, err := rd.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(l) < 3 {
		return nil, fmt.Errorf("bad reply %q", l)
	}
	body := string(l[1 : len(l)-2])
	switch l[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readValue(rd); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("bad reply %q", l)
}

// keySlot is Redis Cluster's HASH_SLOT: CRC16 (XMODEM) of the key, or of
// its first non-empty {hash tag}, mod 16384.
func keySlot(k []byte) uint16 {
	if i := bytes.IndexByte(k, '{'); i >= 0 {
		if j := bytes.IndexByte(k[i+1:], '}'); j > 0 {
			k = k[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range k {
		crc ^= uint16(b) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
