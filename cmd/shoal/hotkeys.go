package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"shoal/internal/resp"
)

// ctlHotkeys is `shoal ctl hotkeys --proxy ADDR [-n N]`: it asks a proxy
// (SHOAL HOTKEYS N on its RESP port) for its hottest keys.
func ctlHotkeys(params []string, timeout time.Duration, asJSON bool, out io.Writer) error {
	const usage = "usage: shoal ctl hotkeys --proxy ADDR [-n N]"
	addr, n := "", 10
	for i := 0; i < len(params); i++ {
		name, v, hasVal := strings.Cut(params[i], "=")
		val := func() (string, error) {
			if hasVal {
				return v, nil
			}
			if i+1 >= len(params) {
				return "", fmt.Errorf("%s needs a value\n%s", name, usage)
			}
			i++
			return params[i], nil
		}
		switch name {
		case "--proxy", "-proxy":
			v, err := val()
			if err != nil {
				return err
			}
			addr = v
		case "-n", "--n", "--count":
			v, err := val()
			if err != nil {
				return err
			}
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				return fmt.Errorf("bad -n %q (a positive count)", v)
			}
		default:
			return fmt.Errorf("unknown argument %q\n%s", params[i], usage)
		}
	}
	if addr == "" {
		return errors.New(usage)
	}
	keys, err := fetchHotkeys(addr, n, timeout)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(keys)
	}
	if len(keys) == 0 {
		fmt.Fprintln(out, "no key accesses counted yet")
		return nil
	}
	fmt.Fprintf(out, "%-4s %12s  %s\n", "RANK", "SCORE", "KEY")
	for i, k := range keys {
		fmt.Fprintf(out, "%-4d %12d  %s\n", i+1, k.Score, strconv.Quote(k.Key))
	}
	return nil
}

type hotkey struct {
	Key   string `json:"key"`
	Score int64  `json:"score"`
}

func fetchHotkeys(addr string, n int, timeout time.Duration) ([]hotkey, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("connect to the proxy: %w", err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(resp.AppendCommand(nil, "SHOAL", "HOTKEYS", strconv.Itoa(n))); err != nil {
		return nil, fmt.Errorf("send to the proxy: %w", err)
	}
	rp, err := resp.ReadReply(bufio.NewReader(nc), 0)
	if err != nil {
		return nil, fmt.Errorf("read the proxy's reply: %w", err)
	}
	if rp.Kind == '-' {
		return nil, fmt.Errorf("%s: %s (is it a shoal proxy?)", addr, rp.Str)
	}
	keys := []hotkey{}
	for _, e := range rp.Elems {
		if len(e.Elems) != 2 {
			return nil, fmt.Errorf("%s: unexpected reply %s", addr, rp.String())
		}
		keys = append(keys, hotkey{Key: e.Elems[0].Str, Score: e.Elems[1].Int})
	}
	return keys, nil
}
