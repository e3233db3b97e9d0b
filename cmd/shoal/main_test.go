package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/internal/cluster"
	"shoal/internal/engine"
	"shoal/internal/manager"
	"shoal/internal/persist"
)

func TestCheckSnapshot(t *testing.T) {
	db := engine.New(engine.Hooks{})
	for _, k := range []string{"a", "b", "c"} {
		i := cluster.Slot([]byte(k))
		e := &engine.Entry{Type: engine.TypeString}
		e.SetBytes([]byte("v"))
		db.Lock(i)
		db.Add(db.Slot(i), []byte(k), e)
		db.Unlock(i)
	}
	path := filepath.Join(t.TempDir(), "dump.shoal")
	if _, err := persist.SaveFile(db, path, persist.DumpOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := checkSnapshot([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "keys 3") || strings.Count(s, "slot ") != 3 {
		t.Fatalf("report:\n%s", s)
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-3], 0o644)
	err := checkSnapshot([]string{"-q", path}, &out)
	if err == nil || !strings.Contains(err.Error(), "offset") || !strings.Contains(err.Error(), path) {
		t.Fatalf("truncated file: %v", err)
	}
}

func TestCheckAOF(t *testing.T) {
	dir := t.TempDir()
	l, err := persist.OpenLog(nil, dir, "appendonly.aof", 1, persist.FsyncAlways)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		l.Append(1, persist.AppendEffect(nil, 0, []byte("set"), []byte("k"), []byte("v")))
	}
	l.Close()
	seg := filepath.Join(dir, persist.SegmentName("appendonly.aof", 1))
	var out bytes.Buffer
	if err := checkAOF([]string{dir}, &out); err != nil || !strings.Contains(out.String(), "records: 5") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// A torn tail is reported, and cut with --fix.
	f, _ := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{9, 0, 0, 0, 1})
	f.Close()
	out.Reset()
	if err := checkAOF([]string{seg}, &out); err != nil || !strings.Contains(out.String(), "incomplete last record") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := checkAOF([]string{"--fix", seg}, &out); err != nil {
		t.Fatal(err)
	}
	// Damage in the middle: an error with the offset; --fix truncates there.
	data, _ := os.ReadFile(seg)
	data[40] ^= 0xff
	os.WriteFile(seg, data, 0o644)
	out.Reset()
	err = checkAOF([]string{dir}, &out)
	if err == nil || !strings.Contains(out.String(), "at offset 24") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := checkAOF([]string{"--fix", dir}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := checkAOF([]string{dir}, &out); err != nil || !strings.Contains(out.String(), "records: 0") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

func TestManagerBootstrapIDFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "m2", "--bootstrap-id", "m1"}, "--bootstrap-id needs --join"},
		{[]string{"--id", "m1", "--bootstrap-id", "m1", "--bootstrap"}, "exclude each other"},
	} {
		err := runManager(append(tc.args, "--dir", t.TempDir()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("runManager(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestPrintNodesShowsVersions(t *testing.T) {
	var b bytes.Buffer
	printNodes(&b, []manager.NodeStatus{
		{Node: cluster.Node{ID: "aaaaaaaaaaaa", Addr: "10.0.0.1:6379", Version: "0.1.0", Protocol: 1}},
		{Node: cluster.Node{ID: "bbbbbbbbbbbb", Addr: "10.0.0.2:6379"}},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "VERSION") ||
		!strings.HasSuffix(lines[1], "0.1.0/p1") || !strings.HasSuffix(lines[2], "-/p0") {
		t.Fatalf("nodes table:\n%s", b.String())
	}
}
