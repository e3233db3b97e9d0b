package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	"shoal/internal/resp"
)

// TestCtlHotkeys runs shoal ctl hotkeys against a stand-in proxy that
// checks the request and answers like SHOAL HOTKEYS.
func TestCtlHotkeys(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 2)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var buf []byte
			tmp := make([]byte, 512)
			for {
				n, err := nc.Read(tmp)
				if err != nil {
					break
				}
				buf = append(buf, tmp[:n]...)
				if args, m, _, _ := resp.Parse(buf, nil, resp.DefaultLimits); m > 0 {
					var s []string
					for _, a := range args {
						s = append(s, string(a))
					}
					got <- s
					break
				}
			}
			nc.Write([]byte("*2\r\n*2\r\n$3\r\nk 1\r\n:40\r\n*2\r\n$2\r\nk2\r\n:8\r\n"))
			nc.Close()
		}
	}()
	var out bytes.Buffer
	if err := runCtl([]string{"hotkeys", "--proxy", ln.Addr().String(), "-n", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	if req := <-got; strings.Join(req, " ") != "SHOAL HOTKEYS 2" {
		t.Errorf("request %q", strings.Join(req, " "))
	}
	want := "RANK        SCORE  KEY\n1              40  \"k 1\"\n2               8  \"k2\"\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := runCtl([]string{"--json", "hotkeys", "--proxy=" + ln.Addr().String()}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"key": "k 1"`) || !strings.Contains(out.String(), `"score": 40`) {
		t.Errorf("json: %s", out.String())
	}
	if err := runCtl([]string{"hotkeys"}, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("no --proxy: %v", err)
	}
}

func TestParseHotKeyCache(t *testing.T) {
	for in, want := range map[string]string{
		"100,200ms": "100 200ms", "off": "0 0s", "0": "0 0s", " 5 , 1s": "5 1s",
		"100": "error", "x,1s": "error", "5,soon": "error", "-1,1s": "error",
	} {
		n, ttl, err := parseHotKeyCache(in)
		got := fmt.Sprintf("%d %v", n, ttl)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}
