package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/internal/cluster"
	"shoal/internal/engine"
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
