package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "1k": 1000, "1kb": 1024, "2mb": 2 << 20, "1gb": 1 << 30, "3G": 3e9, "5m": 5e6} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1tb", "99999999999999999gb"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

func TestParseArgsRedisStyle(t *testing.T) {
	c := Default()
	err := c.ParseArgs([]string{"--port", "6380", "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru",
		"--save", "", "--client-output-buffer-limit", "pubsub", "1mb", "512kb", "10", "--bind", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 6380 || c.MaxMemory != 100<<20 || c.MaxMemoryPolicy != "allkeys-lru" {
		t.Fatalf("got port %d maxmemory %d policy %s", c.Port, c.MaxMemory, c.MaxMemoryPolicy)
	}
	if c.OutputPubsub != (OutputLimit{Hard: 1 << 20, Soft: 512 << 10, SoftSeconds: 10}) {
		t.Fatalf("pubsub limit %+v", c.OutputPubsub)
	}
	if strings.Join(c.Bind, " ") != "127.0.0.1 ::1" {
		t.Fatalf("bind %v", c.Bind)
	}
	for _, bad := range [][]string{
		{"--port", "70000"}, {"--nosuch", "1"}, {"port", "1"}, {"--maxmemory-policy", "lru"},
		{"--appendonly", "maybe"}, {"--appendfsync-always-delay", "-1"}, {"--appendfsync-always-delay", "100001"}, {"--appendfsync", "sometimes"}, {"--appenddirname", "a/b"}, {"--save", "900"}, {"--save", "900 x"}, {"--dbfilename", "a/b"}, {"--proto-max-bulk-len", "3gb"},
	} {
		if err := Default().ParseArgs(bad); err == nil {
			t.Errorf("ParseArgs(%q) accepted", bad)
		}
	}
}

func TestConfigFileAndRuntimeSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shoal.conf")
	os.WriteFile(path, []byte("# comment\nport 7000\nmaxclients 50\nrequirepass \"s3cret\"\n\n"), 0o644)
	c := Default()
	if err := c.ParseArgs([]string{path, "--maxclients", "60"}); err != nil {
		t.Fatal(err)
	}
	if c.Port != 7000 || c.MaxClients != 60 || c.RequirePass != "s3cret" {
		t.Fatalf("port %d maxclients %d pass %q", c.Port, c.MaxClients, c.RequirePass)
	}
	if err := c.Set("port", "7001", true); err == nil {
		t.Fatal("port changed at runtime")
	}
	changed := ""
	c.OnChange(func(name string) { changed = name })
	if err := c.Set("MAXMEMORY", "1gb", true); err != nil || c.MaxMemory != 1<<30 || changed != "maxmemory" {
		t.Fatalf("runtime set: %v %d %q", err, c.MaxMemory, changed)
	}
	got := c.Get("max*", func(p, s string) bool { return strings.HasPrefix(s, strings.TrimSuffix(p, "*")) })
	if len(got) < 4 {
		t.Fatalf("Get max* = %v", got)
	}
	if err := Default().LoadFile(filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestSavePolicy(t *testing.T) {
	c := Default()
	if err := c.ParseArgs([]string{"--save", " 900 1  300 10 ", "--dbfilename", "x.shoal", "--dir", "/tmp"}); err != nil {
		t.Fatal(err)
	}
	if c.Save != "900 1 300 10" || len(c.SavePoints) != 2 || c.SavePoints[1] != (SavePoint{300, 10}) {
		t.Fatalf("save %q %v", c.Save, c.SavePoints)
	}
	if c.SnapshotPath() != "/tmp/x.shoal" {
		t.Fatal(c.SnapshotPath())
	}
	if err := c.Set("save", "", true); err != nil || c.Save != "" || c.SavePoints != nil {
		t.Fatalf("save off: %v %q %v", err, c.Save, c.SavePoints)
	}
}

func TestClusterEnabled(t *testing.T) {
	c := Default()
	if c.ClusterEnabled {
		t.Fatal("cluster-enabled defaults to yes")
	}
	if err := c.ParseArgs([]string{"--cluster-enabled", "YES"}); err != nil || !c.ClusterEnabled {
		t.Fatalf("--cluster-enabled yes: %v %v", err, c.ClusterEnabled)
	}
	if got := c.Get("cluster-enabled", func(p, s string) bool { return p == s }); len(got) != 1 || got[0][1] != "yes" {
		t.Fatalf("CONFIG GET cluster-enabled = %v", got)
	}
	if err := c.Set("cluster-enabled", "no", true); err == nil || !c.ClusterEnabled {
		t.Fatalf("cluster-enabled changed at runtime: %v", err)
	}
	if err := Default().ParseArgs([]string{"--cluster-enabled", "maybe"}); err == nil {
		t.Fatal("cluster-enabled maybe accepted")
	}
	path := filepath.Join(t.TempDir(), "shoal.conf")
	os.WriteFile(path, []byte("cluster-enabled yes\n"), 0o644)
	c = Default()
	if err := c.ParseArgs([]string{path}); err != nil || !c.ClusterEnabled {
		t.Fatalf("config file: %v %v", err, c.ClusterEnabled)
	}
}
