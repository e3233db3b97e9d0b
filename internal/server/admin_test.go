package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/config"
	"shoal/internal/engine"
	"shoal/internal/server"
	tu "shoal/internal/testutil"
)

// steps runs (command, want) pairs; commands are split on spaces.
func steps(t *testing.T, c *tu.Conn, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if got := c.Do(tu.C(pairs[i])...); got != pairs[i+1] {
			t.Errorf("%s:\n got  %s\n want %s", pairs[i], got, pairs[i+1])
		}
	}
}

// infoField returns one field of INFO's text.
// wantInfo fails unless INFO section's field is want now.
func wantInfo(t *testing.T, c *tu.Conn, section, field, want string) {
	t.Helper()
	if got := infoField(t, c, section, field); got != want {
		t.Fatalf("INFO %s: %s = %s, want %s", section, field, got, want)
	}
}

func infoField(t *testing.T, c *tu.Conn, section, field string) string {
	t.Helper()
	r, err := c.DoReply("INFO", section)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(r.Str, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			return v
		}
	}
	t.Fatalf("INFO %s has no field %s:\n%s", section, field, r.Str)
	return ""
}

func infoInt(t *testing.T, c *tu.Conn, section, field string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(infoField(t, c, section, field), 10, 64)
	if err != nil {
		t.Fatalf("INFO %s: %v", field, err)
	}
	return v
}

func TestInfo(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	steps(t, c, "SET a 1", "OK", "SET b 2 EX 100", "OK", "GET a", `"1"`, "GET nokey", "(nil)")

	r, err := c.DoReply("INFO")
	if err != nil || r.Kind != '$' {
		t.Fatalf("INFO: %v %q", err, r.Kind)
	}
	for _, sec := range []string{"# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Replication", "# CPU", "# Keyspace"} {
		if !strings.Contains(r.Str, sec+"\r\n") {
			t.Errorf("default INFO lacks %s", sec)
		}
	}
	if strings.Contains(r.Str, "# Commandstats") {
		t.Errorf("default INFO has commandstats")
	}
	for _, f := range []string{"redis_version", "shoal_version", "process_id", "tcp_port", "uptime_in_seconds",
		"connected_clients", "blocked_clients", "maxclients", "used_memory", "used_memory_human", "used_memory_rss",
		"used_memory_peak", "maxmemory", "maxmemory_human", "maxmemory_policy", "mem_fragmentation_ratio",
		"loading", "rdb_changes_since_last_save", "rdb_last_save_time", "aof_enabled",
		"total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
		"total_net_input_bytes", "rejected_connections", "expired_keys", "evicted_keys", "keyspace_hits",
		"keyspace_misses", "pubsub_channels", "pubsub_patterns", "role", "connected_slaves", "master_replid",
		"master_repl_offset", "used_cpu_sys", "used_cpu_user"} {
		if !regexp.MustCompile(`(?m)^` + f + `:`).MatchString(r.Str) {
			t.Errorf("INFO lacks %s", f)
		}
	}
	if got := infoField(t, c, "keyspace", "db0"); got != "keys=2,expires=1,avg_ttl=0" {
		t.Errorf("db0 = %s", got)
	}
	if got := infoField(t, c, "persistence", "aof_enabled"); got != "0" {
		t.Errorf("aof_enabled = %s", got)
	}
	if got := infoField(t, c, "replication", "role"); got != "master" {
		t.Errorf("role = %s", got)
	}
	if got := infoField(t, c, "replication", "master_replid"); len(got) != 40 {
		t.Errorf("master_replid = %q", got)
	}
	if infoInt(t, c, "stats", "keyspace_hits") != 1 || infoInt(t, c, "stats", "keyspace_misses") != 1 {
		t.Errorf("hits/misses wrong")
	}
	if infoInt(t, c, "server", "tcp_port") == 0 || infoInt(t, c, "clients", "connected_clients") != 1 {
		t.Errorf("tcp_port/connected_clients wrong")
	}
	if infoInt(t, c, "memory", "used_memory") <= 0 || infoInt(t, c, "memory", "used_memory_peak") < infoInt(t, c, "memory", "used_memory") {
		t.Errorf("used_memory / peak wrong")
	}
	stats := infoField(t, c, "commandstats", "cmdstat_set")
	if !regexp.MustCompile(`^calls=2,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0$`).MatchString(stats) {
		t.Errorf("cmdstat_set = %s", stats)
	}
	c.Do("INCRBY", "a", "x") // not an integer: a failed call
	if got := infoField(t, c, "commandstats", "cmdstat_incrby"); !strings.HasSuffix(got, "failed_calls=1") {
		t.Errorf("cmdstat_incrby = %s", got)
	}
	// Several sections, "everything", unknown section.
	r, _ = c.DoReply("INFO", "cpu", "keyspace")
	if !strings.HasPrefix(r.Str, "# CPU\r\n") || !strings.Contains(r.Str, "# Keyspace") || strings.Contains(r.Str, "# Server") {
		t.Errorf("INFO cpu keyspace = %q", r.Str)
	}
	r, _ = c.DoReply("INFO", "everything")
	if !strings.Contains(r.Str, "# Commandstats") || !strings.Contains(r.Str, "# Server") {
		t.Errorf("INFO everything lacks sections")
	}
	if r, _ = c.DoReply("INFO", "nosuchsection"); r.Str != "" {
		t.Errorf("INFO nosuchsection = %q", r.Str)
	}
	// RESP3: a verbatim string.
	c.Do("HELLO", "3")
	if r, _ = c.DoReply("INFO", "server"); r.Kind != '=' || !strings.HasPrefix(r.Str, "# Server") {
		t.Errorf("RESP3 INFO = %q %q", r.Kind, r.Str)
	}
	// CONFIG RESETSTAT clears counters.
	steps(t, c, "CONFIG RESETSTAT", "OK")
	if infoInt(t, c, "stats", "keyspace_hits") != 0 {
		t.Errorf("keyspace_hits after RESETSTAT")
	}
	if got := infoField(t, c, "commandstats", "cmdstat_info"); !strings.HasPrefix(got, "calls=0,") && !strings.HasPrefix(got, "calls=1,") {
		t.Errorf("cmdstat_info after RESETSTAT = %s", got)
	}
}

func TestInfoOpsPerSec(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	// Keep sending commands until the sampled rate shows up (the cron
	// samples every 100 ms).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i := 0; i < 200; i++ {
			c.Do("PING")
		}
		if infoInt(t, c, "stats", "instantaneous_ops_per_sec") > 0 {
			return
		}
	}
	t.Fatal("instantaneous_ops_per_sec stayed 0")
}

func TestConfig(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Do("HELLO", proto)
			mp := func(kv ...string) string {
				var b strings.Builder
				if proto == "3" {
					b.WriteString("{")
					for i := 0; i < len(kv); i += 2 {
						if i > 0 {
							b.WriteString(" ")
						}
						b.WriteString(strconv.Quote(kv[i]) + ":" + strconv.Quote(kv[i+1]))
					}
					b.WriteString("}")
					return b.String()
				}
				b.WriteString("[")
				for i, s := range kv {
					if i > 0 {
						b.WriteString(" ")
					}
					b.WriteString(strconv.Quote(s))
				}
				b.WriteString("]")
				return b.String()
			}
			steps(t, c,
				"CONFIG SET maxmemory 0 maxmemory-policy noeviction", "OK",
				"CONFIG GET maxmemory", mp("maxmemory", "0"),
				"CONFIG GET maxmemory-p*", mp("maxmemory-policy", "noeviction"),
				"CONFIG GET maxmemory maxmemory-policy maxmem*", mp("maxmemory", "0", "maxmemory-policy", "noeviction", "maxmemory-samples", "5"),
				"CONFIG GET nosuch", mp(),
				"CONFIG SET maxmemory 10mb maxmemory-policy allkeys-lru", "OK",
				"CONFIG GET maxmemory maxmemory-policy", mp("maxmemory", "10485760", "maxmemory-policy", "allkeys-lru"),
				// All or nothing: the bad value leaves maxmemory unchanged.
				"CONFIG SET maxmemory 20mb maxmemory-policy bogus", "(error) ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-lfu, volatile-lru, volatile-lfu, volatile-ttl, allkeys-random, volatile-random",
				"CONFIG GET maxmemory", mp("maxmemory", "10485760"),
				"CONFIG SET maxmemory abc", "(error) ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value",
				"CONFIG SET maxmemory 1 maxmemory 2", "(error) ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter",
				"CONFIG SET nosuch 1", "(error) ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'",
				"CONFIG SET port 1", "(error) ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config",
				"CONFIG SET maxmemory", "(error) ERR wrong number of arguments for 'config|set' command",
				"CONFIG GET", "(error) ERR wrong number of arguments for 'config|get' command",
				"CONFIG SET maxmemory 0 maxmemory-policy noeviction", "OK",
				"CONFIG REWRITE", "(error) ERR The server is running without a config file",
				"CONFIG FOO", "(error) ERR unknown subcommand 'FOO'. Try CONFIG HELP.",
			)
			if r, _ := c.DoReply("CONFIG", "HELP"); len(r.Elems) < 5 || !strings.HasPrefix(r.Elems[0].Str, "CONFIG <subcommand>") {
				t.Errorf("CONFIG HELP = %v", r)
			}
		})
	}
}

func TestConfigRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shoal.conf")
	if err := os.WriteFile(path, []byte("# my config\nmaxmemory 1mb\n\n# keep me\nmaxmemory 2mb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPort := tu.FreePort(t)
	node := startWithFile(t, path, cfgPort)
	c := tu.Dial(t, node)
	steps(t, c,
		"CONFIG GET maxmemory", `["maxmemory" "2097152"]`,
		"CONFIG SET maxmemory 3mb hz 20", "OK",
		"CONFIG REWRITE", "OK")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"# my config\n", "maxmemory 3145728\n", "\n# keep me\n", "hz 20\n", "port " + strconv.Itoa(cfgPort) + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten file lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "maxmemory ") != 1 {
		t.Errorf("maxmemory appears more than once:\n%s", got)
	}
}

func TestClient(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	other := tu.Dial(t, n.Addr)
	other.Do("PING")
	id := c.Do("CLIENT", "ID")
	if !strings.HasPrefix(id, "(integer) ") {
		t.Fatalf("CLIENT ID = %s", id)
	}
	steps(t, c,
		"CLIENT GETNAME", "(nil)",
		"CLIENT SETNAME myname", "OK",
		"CLIENT GETNAME", `"myname"`,
		"CLIENT SETINFO lib-name go-redis", "OK",
		"CLIENT SETINFO LIB-VER 9.0.5", "OK",
		"CLIENT SETINFO foo x", "(error) ERR Unrecognized option 'foo'",
		"CLIENT SETINFO lib-name", "(error) ERR wrong number of arguments for 'client|setinfo' command",
		"CLIENT NO-EVICT on", "OK",
		"CLIENT NO-EVICT maybe", "(error) ERR syntax error",
		"CLIENT NO-TOUCH off", "OK",
		"CLIENT KILL 1.2.3.4:5", "(error) ERR No such client",
		"CLIENT KILL ID 999999", "(integer) 0",
		"CLIENT KILL ID abc", "(error) ERR client-id should be greater than 0",
		"CLIENT KILL FOO bar", "(error) ERR syntax error",
		"CLIENT FOO", "(error) ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
	)
	if got := c.Do("CLIENT", "SETNAME", "a b"); got != "(error) ERR Client names cannot contain spaces, newlines or special characters." {
		t.Errorf("SETNAME with space: %s", got)
	}
	if got := c.Do("CLIENT", "SETINFO", "lib-name", "a b"); got != "(error) ERR lib-name cannot contain spaces, newlines or special characters." {
		t.Errorf("SETINFO with space: %s", got)
	}
	r, _ := c.DoReply("CLIENT", "INFO")
	line := strings.TrimSpace(r.Str)
	re := regexp.MustCompile(`^id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=\d+ name=myname age=\d+ idle=\d+ flags=e db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ multi-mem=\d+ rbs=\d+ rbp=\d+ obl=\d+ oll=\d+ omem=\d+ tot-mem=\d+ events=r cmd=client\|info user=default redir=-1 resp=2 lib-name=go-redis lib-ver=9\.0\.5$`)
	if !re.MatchString(line) {
		t.Errorf("CLIENT INFO = %q", line)
	}
	r, _ = c.DoReply("CLIENT", "LIST")
	lines := strings.Split(strings.TrimRight(r.Str, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(r.Str, "cmd=client|list") || !strings.Contains(r.Str, "cmd=ping") {
		t.Errorf("CLIENT LIST = %q", r.Str)
	}
	r, _ = c.DoReply("CLIENT", "LIST", "ID", strings.TrimPrefix(id, "(integer) "))
	if strings.Count(r.Str, "\n") != 1 || !strings.Contains(r.Str, "name=myname") {
		t.Errorf("CLIENT LIST ID = %q", r.Str)
	}
	r, _ = c.DoReply("CLIENT", "LIST", "TYPE", "pubsub")
	if r.Str != "" {
		t.Errorf("CLIENT LIST TYPE pubsub = %q", r.Str)
	}

	// Kill the other client by id, then by address (old style).
	oid := strings.TrimPrefix(other.Do("CLIENT", "ID"), "(integer) ")
	if got := c.Do("CLIENT", "KILL", "ID", oid); got != "(integer) 1" {
		t.Fatalf("CLIENT KILL ID = %s", got)
	}
	if !other.Closed(5 * time.Second) {
		t.Errorf("killed client still open")
	}
	third := tu.Dial(t, n.Addr)
	third.Do("PING")
	if got := c.Do("CLIENT", "KILL", third.C.LocalAddr().String()); got != "OK" {
		t.Fatalf("CLIENT KILL addr = %s", got)
	}
	if !third.Closed(5 * time.Second) {
		t.Errorf("client killed by addr still open")
	}
	fourth := tu.Dial(t, n.Addr)
	fourth.Do("PING")
	if got := c.Do("CLIENT", "KILL", "ADDR", fourth.C.LocalAddr().String(), "SKIPME", "yes"); got != "(integer) 1" {
		t.Fatalf("CLIENT KILL ADDR = %s", got)
	}
	if !fourth.Closed(5 * time.Second) {
		t.Errorf("client killed by ADDR still open")
	}
	// SKIPME yes (default) spares the caller; SKIPME no closes it after the reply.
	if got := c.Do("CLIENT", "KILL", "ID", strings.TrimPrefix(id, "(integer) ")); got != "(integer) 0" {
		t.Errorf("CLIENT KILL own ID = %s", got)
	}
	if got := c.Do("CLIENT", "KILL", "ID", strings.TrimPrefix(id, "(integer) "), "SKIPME", "no"); got != "(integer) 1" {
		t.Errorf("CLIENT KILL own ID SKIPME no = %s", got)
	}
	if !c.Closed(5 * time.Second) {
		t.Errorf("self-killed client still open")
	}
	// RESP3: CLIENT INFO is a verbatim string.
	d := tu.Dial(t, n.Addr)
	d.Do("HELLO", "3")
	if r, _ := d.DoReply("CLIENT", "INFO"); r.Kind != '=' || !strings.Contains(r.Str, "resp=3") {
		t.Errorf("RESP3 CLIENT INFO = %q %q", r.Kind, r.Str)
	}
	if r, _ := d.DoReply("CLIENT", "HELP"); len(r.Elems) < 10 {
		t.Errorf("CLIENT HELP = %v", r)
	}
}

func TestCommand(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	all, err := c.DoReply("COMMAND")
	if err != nil {
		t.Fatal(err)
	}
	count := c.Do("COMMAND", "COUNT")
	if count != "(integer) "+strconv.Itoa(len(all.Elems)) {
		t.Errorf("COMMAND COUNT %s, COMMAND has %d", count, len(all.Elems))
	}
	for _, e := range all.Elems {
		if len(e.Elems) != 10 {
			t.Fatalf("COMMAND entry with %d fields: %v", len(e.Elems), e)
		}
	}
	steps(t, c,
		"COMMAND INFO get", `[["get" (integer) 2 [readonly fast] (integer) 1 (integer) 1 (integer) 1 [@read @string @fast] [] [["flags" [RO ACCESS] "begin_search" ["type" "index" "spec" ["index" (integer) 1]] "find_keys" ["type" "range" "spec" ["lastkey" (integer) 0 "keystep" (integer) 1 "limit" (integer) 0]]]] []]]`,
		"COMMAND INFO nosuch", "[(nil)]",
		"COMMAND GETKEYS get a", `["a"]`,
		"COMMAND GETKEYS mset a 1 b 2", `["a" "b"]`,
		"COMMAND GETKEYS ping x", "(error) ERR The command has no key arguments",
		"COMMAND GETKEYS foo x", "(error) ERR Invalid command specified",
		"COMMAND GETKEYS set a", "(error) ERR Invalid number of arguments specified for command",
		"COMMAND GETKEYS", "(error) ERR wrong number of arguments for 'command|getkeys' command",
		"COMMAND LIST FILTERBY PATTERN conf*", `["config"]`,
		"COMMAND LIST FILTERBY MODULE x", `[]`,
		"COMMAND FOO", "(error) ERR unknown subcommand 'FOO'. Try COMMAND HELP.",
	)
	r, _ := c.DoReply("COMMAND", "INFO", "config")
	subs := r.Elems[0].Elems[9]
	if len(subs.Elems) == 0 || subs.Elems[0].Elems[0].Str != "config|get" {
		t.Errorf("config subcommands = %v", subs)
	}
	r, _ = c.DoReply("COMMAND", "LIST", "FILTERBY", "ACLCAT", "admin")
	if !strings.Contains(r.String(), `"config"`) || strings.Contains(r.String(), `"get"`) {
		t.Errorf("ACLCAT admin = %v", r)
	}
	// DOCS: a map per command, RESP3 too.
	c.Do("HELLO", "3")
	if got := c.Do("COMMAND", "DOCS", "get"); got != `{"get":{"summary":"Get the value of a key" "since":"1.0.0" "group":"string" "complexity":"O(1)" `+
		`"arguments":[{"name":"key" "type":"key" "key_spec_index":(integer) 0}]}}` {
		t.Errorf("COMMAND DOCS get = %s", got)
	}
	if r, _ := c.DoReply("COMMAND", "INFO", "set"); r.Elems[0].Elems[2].Kind != '~' {
		t.Errorf("RESP3 flags not a set: %v", r)
	}
}

func TestServerMisc(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	c.Do("SET", "k", "value")
	steps(t, c,
		"ROLE", `["master" (integer) 0 []]`,
		"LATENCY LATEST", "[]",
		"LATENCY HISTORY command", "[]",
		"LATENCY RESET", "(integer) 0",
		"LATENCY GRAPH command", "(error) ERR No samples available for event 'command'",
		"LATENCY FOO", "(error) ERR unknown subcommand 'FOO'. Try LATENCY HELP.",
		"MEMORY USAGE nokey", "(nil)",
		"MEMORY USAGE k SAMPLES x", "(error) ERR value is not an integer or out of range",
		"MEMORY FOO", "(error) ERR unknown subcommand 'FOO'. Try MEMORY HELP.",
		"DEBUG SET-ACTIVE-EXPIRE 1", "OK",
		"DEBUG SLEEP x", "(error) ERR value is not a valid float",
		"DEBUG FOO", "(error) ERR unknown subcommand or wrong number of arguments for 'FOO'. Try DEBUG HELP.",
		"SHUTDOWN ABORT", "(error) ERR No shutdown in progress.",
		"SHUTDOWN BOGUS", "(error) ERR syntax error",
	)
	if got := c.Do("MEMORY", "USAGE", "k"); got != "(integer) "+strconv.Itoa(int(engine.KeyCost(1)+engine.AllocSize(len("value")))) {
		t.Errorf("MEMORY USAGE k = %s", got)
	}
	ls := c.Do("LASTSAVE")
	v, _ := strconv.ParseInt(strings.TrimPrefix(ls, "(integer) "), 10, 64)
	if now := time.Now().Unix(); v > now || v < now-60 {
		t.Errorf("LASTSAVE = %s", ls)
	}
	r, _ := c.DoReply("MEMORY", "STATS")
	if len(r.Elems) == 0 || r.Elems[0].Str != "peak.allocated" {
		t.Errorf("MEMORY STATS = %v", r)
	}
	if r, _ := c.DoReply("MEMORY", "DOCTOR"); r.Kind != '$' || r.Str == "" {
		t.Errorf("MEMORY DOCTOR = %v", r)
	}
	for _, cmd := range []string{"MEMORY", "LATENCY", "DEBUG", "COMMAND"} {
		if r, _ := c.DoReply(cmd, "HELP"); len(r.Elems) < 3 {
			t.Errorf("%s HELP = %v", cmd, r)
		}
	}
	// DEBUG SLEEP blocks the client for the given time.
	start := time.Now()
	steps(t, c, "DEBUG SLEEP 0.2", "OK")
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("DEBUG SLEEP 0.2 took %v", el)
	}
	// DEBUG SET-ACTIVE-EXPIRE 0: expired keys stay until accessed.
	steps(t, c, "DEBUG SET-ACTIVE-EXPIRE 0", "OK", "SET e 1 PX 1", "OK")
	steps(t, c, "DEBUG SLEEP 0.3", "OK") // several cron periods (hz 10)
	if got := infoField(t, c, "keyspace", "db0"); !strings.HasPrefix(got, "keys=2,") {
		t.Errorf("expired key reclaimed with active expire off: %s", got)
	}
	steps(t, c, "GET e", "(nil)", "DEBUG SET-ACTIVE-EXPIRE 1", "OK")
}

func TestShutdown(t *testing.T) {
	// A missing dir: SHUTDOWN SAVE fails and the server keeps running.
	n := tu.StartServer(t, "dir", filepath.Join(t.TempDir(), "missing"))
	c := tu.Dial(t, n.Addr)
	steps(t, c, "MULTI", "OK", "SHUTDOWN", "(error) ERR Command not allowed inside a transaction", "DISCARD", "OK")
	steps(t, c, "SHUTDOWN SAVE", "(error) ERR Errors trying to SHUTDOWN. Check logs.")
	if _, err := c.DoReply("SHUTDOWN", "NOSAVE"); err == nil {
		t.Errorf("SHUTDOWN replied instead of closing")
	}
	select {
	case <-n.Srv.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("ShutdownRequested not signalled")
	}
	// The server stops listening.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := dialOnce(n.Addr)
		if err != nil {
			break
		}
		d.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepts connections after SHUTDOWN")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMulti(t *testing.T) {
	n := tu.StartServer(t)
	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			c := tu.Dial(t, n.Addr)
			c.Do("HELLO", proto)
			c.Do("FLUSHALL")
			steps(t, c,
				"MULTI", "OK",
				"SET a 1", "QUEUED",
				"INCR a", "QUEUED",
				"GET a", "QUEUED",
				"EXEC", `[OK (integer) 2 "2"]`,
				"EXEC", "(error) ERR EXEC without MULTI",
				"DISCARD", "(error) ERR DISCARD without MULTI",
				"MULTI", "OK",
				"MULTI", "(error) ERR MULTI calls can not be nested",
				"SET a 5", "QUEUED",
				"DISCARD", "OK",
				"GET a", `"2"`,
				// A runtime error does not abort the others.
				"MULTI", "OK",
				"SET s x", "QUEUED",
				"INCR s", "QUEUED",
				"SET t y", "QUEUED",
				"EXEC", "[OK (error) ERR value is not an integer or out of range OK]",
				// A queue-time error aborts the transaction.
				"MULTI", "OK",
				"SET a 9", "QUEUED",
				"SET a", "(error) ERR wrong number of arguments for 'set' command",
				"NOSUCHCMD", "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: ",
				"EXEC", "(error) EXECABORT Transaction discarded because of previous errors.",
				"GET a", `"2"`,
				"MULTI", "OK",
				"WATCH a", "(error) ERR WATCH inside MULTI is not allowed",
				"DISCARD", "OK",
			)
		})
	}
}

func TestWatch(t *testing.T) {
	n := tu.StartServer(t)
	c := tu.Dial(t, n.Addr)
	other := tu.Dial(t, n.Addr)
	// Another client modifies the watched key: EXEC aborts.
	steps(t, c, "SET w 1", "OK", "WATCH w", "OK", "MULTI", "OK", "INCR w", "QUEUED")
	steps(t, other, "SET w 10", "OK")
	steps(t, c, "EXEC", "(nil)", "GET w", `"10"`)
	// Untouched: EXEC runs. A watch on a missing key too.
	steps(t, c, "WATCH w missing", "OK", "MULTI", "OK", "INCR w", "QUEUED", "EXEC", "[(integer) 11]")
	// Creating a watched missing key aborts.
	steps(t, c, "WATCH missing", "OK")
	steps(t, other, "SET missing x", "OK")
	steps(t, c, "MULTI", "OK", "PING", "QUEUED", "EXEC", "(nil)")
	// UNWATCH forgets the watch.
	steps(t, c, "WATCH w", "OK")
	steps(t, other, "SET w 20", "OK")
	steps(t, c, "UNWATCH", "OK", "MULTI", "OK", "INCR w", "QUEUED", "EXEC", "[(integer) 21]")
	// DISCARD also unwatches.
	steps(t, c, "WATCH w", "OK", "MULTI", "OK", "DISCARD", "OK")
	steps(t, other, "SET w 30", "OK")
	steps(t, c, "MULTI", "OK", "INCR w", "QUEUED", "EXEC", "[(integer) 31]")
	// A watched key that expires before EXEC counts as modified.
	steps(t, c, "SET e 1 PX 100", "OK", "WATCH e", "OK")
	deadline := time.Now().Add(5 * time.Second)
	for other.Do("EXISTS", "e") != "(integer) 0" {
		if time.Now().After(deadline) {
			t.Fatal("key did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	steps(t, c, "MULTI", "OK", "PING", "QUEUED", "EXEC", "(nil)")
	// Flushing the keyspace touches watched keys.
	steps(t, c, "SET f 1", "OK", "WATCH f", "OK")
	steps(t, other, "FLUSHALL", "OK")
	steps(t, c, "MULTI", "OK", "PING", "QUEUED", "EXEC", "(nil)")
}

func TestPubSub(t *testing.T) {
	n := tu.StartServer(t)
	sub := tu.Dial(t, n.Addr)
	psub := tu.Dial(t, n.Addr)
	pub := tu.Dial(t, n.Addr)
	steps(t, sub, "SUBSCRIBE ch1 ch2", `["subscribe" "ch1" (integer) 1]`)
	if r, _ := sub.Read(); r.String() != `["subscribe" "ch2" (integer) 2]` {
		t.Errorf("second subscribe reply = %s", r)
	}
	steps(t, psub, "PSUBSCRIBE news.*", `["psubscribe" "news.*" (integer) 1]`)
	steps(t, pub,
		"PUBLISH ch1 hello", "(integer) 1",
		"PUBLISH news.tech hi", "(integer) 1",
		"PUBLISH nobody x", "(integer) 0",
		"PUBSUB CHANNELS", `["ch1" "ch2"]`,
		"PUBSUB CHANNELS ch1*", `["ch1"]`,
		"PUBSUB NUMSUB ch1 ch3", `["ch1" (integer) 1 "ch3" (integer) 0]`,
		"PUBSUB NUMPAT", "(integer) 1",
	)
	if r, _ := sub.Read(); r.String() != `["message" "ch1" "hello"]` {
		t.Errorf("message = %s", r)
	}
	if r, _ := psub.Read(); r.String() != `["pmessage" "news.*" "news.tech" "hi"]` {
		t.Errorf("pmessage = %s", r)
	}
	if got := infoInt(t, pub, "stats", "pubsub_channels"); got != 2 {
		t.Errorf("pubsub_channels = %d", got)
	}
	// RESP2 subscribed mode allows only (un)subscribe, ping, quit, reset.
	steps(t, sub,
		"GET x", "(error) ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
		"PING", `["pong" ""]`,
		"PING hi", `["pong" "hi"]`,
		"UNSUBSCRIBE ch1", `["unsubscribe" "ch1" (integer) 1]`,
	)
	r, _ := pub.DoReply("CLIENT", "LIST", "TYPE", "pubsub")
	if strings.Count(r.Str, "\n") != 2 {
		t.Errorf("CLIENT LIST TYPE pubsub = %q", r.Str)
	}
	steps(t, sub, "UNSUBSCRIBE", `["unsubscribe" "ch2" (integer) 0]`, "GET x", "(nil)")
	steps(t, psub, "PUNSUBSCRIBE", `["punsubscribe" "news.*" (integer) 0]`)
	steps(t, pub, "PUBSUB NUMPAT", "(integer) 0", "PUBSUB CHANNELS", "[]")

	// RESP3: push messages, and regular commands work while subscribed.
	s3 := tu.Dial(t, n.Addr)
	s3.Do("HELLO", "3")
	steps(t, s3, "SUBSCRIBE c3", `>["subscribe" "c3" (integer) 1]`, "GET x", "(nil)", "PING", "PONG")
	steps(t, pub, "PUBLISH c3 m", "(integer) 1")
	if r, _ := s3.Read(); r.String() != `>["message" "c3" "m"]` {
		t.Errorf("RESP3 message = %s", r)
	}
	steps(t, pub, "PUBSUB NUMSUB c3", `["c3" (integer) 1]`)
	// A closed subscriber is forgotten.
	s3.C.Close()
	deadline := time.Now().Add(5 * time.Second)
	for pub.Do("PUBSUB", "NUMSUB", "c3") != `["c3" (integer) 0]` {
		if time.Now().After(deadline) {
			t.Fatal("closed subscriber still counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// RESET leaves subscribed mode.
	steps(t, sub, "SUBSCRIBE z", `["subscribe" "z" (integer) 1]`, "RESET", "RESET", "GET x", "(nil)")
}

func dialOnce(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

// startWithFile starts a server from a config file (for CONFIG REWRITE).
func startWithFile(t *testing.T, path string, port int) string {
	t.Helper()
	cfg := config.Default()
	if err := cfg.ParseArgs([]string{path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "127.0.0.1:" + strconv.Itoa(port)
}

func TestClientNoTouchLeavesAccessMetadata(t *testing.T) {
	n := tu.StartServer(t, "maxmemory-policy", "allkeys-lfu")
	c := tu.Dial(t, n.Addr)
	c.Do("SET", "k", "v")
	before := c.Do("OBJECT", "FREQ", "k")
	if got := c.Do("CLIENT", "NO-TOUCH", "ON"); got != "OK" {
		t.Fatalf("CLIENT NO-TOUCH ON = %s", got)
	}
	for i := 0; i < 20; i++ {
		c.Do("GET", "k")
	}
	if got := c.Do("OBJECT", "FREQ", "k"); got != before {
		t.Fatalf("FREQ changed under NO-TOUCH: %s -> %s", before, got)
	}
	c.Do("CLIENT", "NO-TOUCH", "OFF")
	c.Do("GET", "k")
	if got := c.Do("OBJECT", "FREQ", "k"); got == before {
		t.Fatalf("FREQ did not change after NO-TOUCH OFF: %s", got)
	}
}
