// Package config holds a storage node's settings. Directive names are
// redis.conf's (plus a few of Shoal's own), used alike on the command line
// (--port 6380), in a config file (port 6380) and by CONFIG GET / SET.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// OutputLimit is one client-output-buffer-limit class.
type OutputLimit struct {
	Hard, Soft  int64
	SoftSeconds int64
}

// Config is a storage node's configuration. Read fields through Snapshot
// or under the lock: CONFIG SET changes them while the server runs.
type Config struct {
	mu sync.RWMutex

	Port          int
	Bind          []string
	ProtectedMode bool
	Dir           string
	RequirePass   string
	// Users are the "user" directives ("alice on >secret ~* +@all"), in
	// order; requirepass applies to the default user after them. Not a
	// CONFIG GET/SET directive (as in Redis: users change through ACL).
	Users                   []string
	MaxClients              int
	Timeout                 int // seconds an idle client is kept; 0 = forever
	TCPKeepAlive            int
	Databases               int
	MaxMemory               int64
	MaxMemoryPolicy         string
	MaxMemorySamples        int
	LFULogFactor            int
	LFUDecayTime            int
	ProtoMaxBulkLen         int64
	MaxMultibulkLen         int64 // proto-max-multibulk-len (Shoal's own)
	MaxInlineLen            int64 // proto-max-inline-len (Shoal's own; redis hard-codes 64k)
	QueryBufferLimit        int64 // client-query-buffer-limit
	OutputNormal            OutputLimit
	OutputPubsub            OutputLimit
	OutputReplica           OutputLimit
	Hz                      int
	SlowlogSlower           int64 // microseconds; <0 disables
	SlowlogMaxLen           int
	LogLevel                string
	LogFile                 string
	PidFile                 string
	Save                    string      // save policy as given ("900 1 300 10"; "" = off)
	SavePoints              []SavePoint // Save parsed
	DBFilename              string      // snapshot file name inside Dir
	KeyLoadDelay            int         // key-load-delay: microseconds to sleep per key loaded (test hook, as Redis)
	AppendOnly              bool
	AppendFsync             string // always | everysec | no
	AppendFilename          string // log segment base name
	AppendDirname           string // log directory inside Dir
	AutoAOFRewritePct       int    // auto-aof-rewrite-percentage (0 = off)
	AutoAOFRewriteMin       int64  // auto-aof-rewrite-min-size
	StopWritesOnBgsaveError bool
	AOFGroupCommitDelay     int // appendfsync-always-delay: µs the log waits to gather writers into one fsync (always)
	MemcachedPort           int
	MemcachedMaxItem        int64 // memcached-max-item-size: largest memcached item value (memcached -I)
	IOThreads               int   // event loops; 0 = one per core
	GCPercent               int   // gc-percent: Go GC target (GOGC); lower = less memory headroom, more GC CPU
	ClusterEnabled          bool  // cluster-enabled: route by the cluster map (docs/cluster.md); fixed at start

	// Admin endpoint: HTTP /metrics, /healthz, /readyz (docs/metrics.md).
	AdminPort int    // admin-port: on the first bind address (0 = off)
	AdminAddr string // admin-addr: host:port instead of admin-port (port 0: any free port)

	// Replication (docs/replication.md).
	ReplicaOf       string // "host port" of the primary; "" = this node is a primary
	MasterAuth      string // password sent to the primary (masterauth), and to a slot move's source
	MasterUser      string // user for MasterAuth (masteruser); "" = AUTH <password> as the default user
	ReplBacklogSize int64  // repl-backlog-size
	// MigrateMaxBytesPerSec bounds the bytes per second this node sends
	// for slot moves, all moves together (0: unlimited).
	MigrateMaxBytesPerSec int64 // migrate-max-bytes-per-sec
	ReplTimeout           int   // repl-timeout, seconds
	ReplPingPeriod        int   // repl-ping-replica-period, seconds
	ReplFullSyncAfter     int   // repl-full-sync-after: seconds a replica may be away and still resync incrementally; 0 = no limit
	ReplInSyncLag         int   // repl-in-sync-lag: ms a replica may trail its primary and still count as in sync
	SyncReplicas          int   // sync-replicas: replicas that must have a write before it is acknowledged (0 = async)
	SyncTimeout           int   // sync-timeout: ms a write waits for sync-replicas before failing
	ReplBatchDelay        int   // repl-batch-delay: µs an async stream gathers records before a send (0 = at once)

	// Cluster membership (docs/cluster.md).
	Manager           string // manager: comma-separated manager addresses; "" = standalone
	ClusterAnnounceIP string // cluster-announce-ip: the host other nodes and clients reach this node at
	ClusterWeight     int    // cluster-weight: capacity share (slots are given in proportion)
	Standby           bool   // standby: register in the standby pool (kept for new shards, never made a replica)
	ManagerToken      string // manager-token: bearer token for the managers' API (their --cluster-token or --admin-token)
	ManagerCAFile     string // manager-tls-ca-cert-file: CA that signed the managers' HTTPS certificates ("" = plain HTTP)

	// TLS on a second client port (docs/server.md, "TLS").
	TLSPort          int    // tls-port (0 = off)
	MemcachedTLSPort int    // memcached-tls-port (0 = off): the memcached protocol over TLS
	TLSCertFile      string // tls-cert-file
	TLSKeyFile       string // tls-key-file
	TLSCACertFile    string // tls-ca-cert-file: CA for client certificates
	TLSAuthClients   string // tls-auth-clients: yes | no | optional
	TLSReplication   bool   // tls-replication: dial other nodes (primary, slot-move source) over TLS

	// onChange is called after a successful Set with the directive name.
	onChange func(name string)
	file     string // absolute path of the config file loaded at start, for CONFIG REWRITE
}

// Default returns redis-server 7's defaults (bound to loopback).
func Default() *Config {
	return &Config{
		Port: 6379, Bind: []string{"127.0.0.1", "-::1"}, ProtectedMode: true, Dir: ".",
		MaxClients: 10000, TCPKeepAlive: 300, Databases: 16,
		MaxMemoryPolicy: "noeviction", MaxMemorySamples: 5, LFULogFactor: 10, LFUDecayTime: 1,
		ProtoMaxBulkLen: 512 << 20, MaxMultibulkLen: 1 << 24, MaxInlineLen: 64 << 10, QueryBufferLimit: 1 << 30,
		OutputPubsub:  OutputLimit{Hard: 32 << 20, Soft: 8 << 20, SoftSeconds: 60},
		OutputReplica: OutputLimit{Hard: 256 << 20, Soft: 64 << 20, SoftSeconds: 60},
		Hz:            10, SlowlogSlower: 10000, SlowlogMaxLen: 128, LogLevel: "notice",
		Save: "", DBFilename: "dump.shoal", AppendOnly: false, AppendFsync: "everysec",
		AppendFilename: "appendonly.aof", AppendDirname: "appendonlydir", AutoAOFRewritePct: 100,
		AutoAOFRewriteMin: 64 << 20, StopWritesOnBgsaveError: true, AOFGroupCommitDelay: 100, GCPercent: 30, MemcachedMaxItem: 1 << 20,
		ReplBacklogSize: 256 << 20, ReplTimeout: 60, ReplPingPeriod: 1, ReplInSyncLag: 1000, SyncTimeout: 5000, ReplBatchDelay: 1000, ClusterWeight: 1,
		TLSAuthClients: "yes",
	}
}

type directive struct {
	get     func(c *Config) string
	set     func(c *Config, v string) error
	mutable bool
}

var directives = map[string]directive{}

func def(name string, mutable bool, get func(c *Config) string, set func(c *Config, v string) error) {
	if _, dup := directives[name]; dup {
		panic("BUG: duplicate directive " + name)
	}
	directives[name] = directive{get: get, set: set, mutable: mutable}
}

func intDir(name string, mutable bool, min, max int64, f func(c *Config) *int) {
	def(name, mutable, func(c *Config) string { return strconv.Itoa(*f(c)) },
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min || n > max {
				return fmt.Errorf("argument must be an integer between %d and %d", min, max)
			}
			*f(c) = int(n)
			return nil
		})
}

func bytesDir(name string, mutable bool, min int64, f func(c *Config) *int64) {
	def(name, mutable, func(c *Config) string { return strconv.FormatInt(*f(c), 10) },
		func(c *Config, v string) error {
			n, err := ParseBytes(v)
			if err != nil {
				return err
			}
			if n < min {
				return fmt.Errorf("argument must be a memory value of at least %d", min)
			}
			*f(c) = n
			return nil
		})
}

func boolDir(name string, mutable bool, f func(c *Config) *bool) {
	def(name, mutable, func(c *Config) string {
		if *f(c) {
			return "yes"
		}
		return "no"
	}, func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "yes":
			*f(c) = true
		case "no":
			*f(c) = false
		default:
			return errors.New("argument must be 'yes' or 'no'")
		}
		return nil
	})
}

func stringDir(name string, mutable bool, f func(c *Config) *string) {
	def(name, mutable, func(c *Config) string { return *f(c) },
		func(c *Config, v string) error { *f(c) = v; return nil })
}

func enumDir(name string, mutable bool, allowed []string, f func(c *Config) *string) {
	def(name, mutable, func(c *Config) string { return *f(c) },
		func(c *Config, v string) error {
			v = strings.ToLower(v)
			for _, a := range allowed {
				if a == v {
					*f(c) = v
					return nil
				}
			}
			return errors.New("argument(s) must be one of the following: " + strings.Join(allowed, ", "))
		})
}

func init() {
	intDir("port", false, 0, 65535, func(c *Config) *int { return &c.Port })
	def("bind", false, func(c *Config) string { return strings.Join(c.Bind, " ") },
		func(c *Config, v string) error { c.Bind = strings.Fields(v); return nil })
	boolDir("protected-mode", true, func(c *Config) *bool { return &c.ProtectedMode })
	stringDir("dir", false, func(c *Config) *string { return &c.Dir })
	stringDir("requirepass", true, func(c *Config) *string { return &c.RequirePass })
	intDir("maxclients", true, 1, 1<<20, func(c *Config) *int { return &c.MaxClients })
	intDir("timeout", true, 0, math.MaxInt32, func(c *Config) *int { return &c.Timeout })
	intDir("tcp-keepalive", true, 0, math.MaxInt32, func(c *Config) *int { return &c.TCPKeepAlive })
	intDir("databases", false, 1, 1<<20, func(c *Config) *int { return &c.Databases })
	bytesDir("maxmemory", true, 0, func(c *Config) *int64 { return &c.MaxMemory })
	enumDir("maxmemory-policy", true, []string{"noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru",
		"volatile-lfu", "volatile-ttl", "allkeys-random", "volatile-random"}, func(c *Config) *string { return &c.MaxMemoryPolicy })
	intDir("maxmemory-samples", true, 1, 64, func(c *Config) *int { return &c.MaxMemorySamples })
	intDir("lfu-log-factor", true, 0, math.MaxInt32, func(c *Config) *int { return &c.LFULogFactor })
	intDir("lfu-decay-time", true, 0, math.MaxInt32, func(c *Config) *int { return &c.LFUDecayTime })
	bytesDir("proto-max-bulk-len", true, 1024*1024, func(c *Config) *int64 { return &c.ProtoMaxBulkLen })
	bytesDir("proto-max-multibulk-len", true, 1, func(c *Config) *int64 { return &c.MaxMultibulkLen })
	bytesDir("proto-max-inline-len", true, 1024, func(c *Config) *int64 { return &c.MaxInlineLen })
	bytesDir("client-query-buffer-limit", true, 1024*1024, func(c *Config) *int64 { return &c.QueryBufferLimit })
	def("client-output-buffer-limit", true, func(c *Config) string {
		f := func(n string, l OutputLimit) string {
			return fmt.Sprintf("%s %d %d %d", n, l.Hard, l.Soft, l.SoftSeconds)
		}
		return f("normal", c.OutputNormal) + " " + f("slave", c.OutputReplica) + " " + f("pubsub", c.OutputPubsub)
	}, setOutputLimits)
	intDir("hz", true, 1, 500, func(c *Config) *int { return &c.Hz })
	def("slowlog-log-slower-than", true, func(c *Config) string { return strconv.FormatInt(c.SlowlogSlower, 10) },
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("argument must be an integer")
			}
			c.SlowlogSlower = n
			return nil
		})
	intDir("slowlog-max-len", true, 0, math.MaxInt32, func(c *Config) *int { return &c.SlowlogMaxLen })
	enumDir("loglevel", true, []string{"debug", "verbose", "notice", "warning", "nothing"}, func(c *Config) *string { return &c.LogLevel })
	stringDir("logfile", false, func(c *Config) *string { return &c.LogFile })
	stringDir("pidfile", false, func(c *Config) *string { return &c.PidFile })
	def("save", true, func(c *Config) string { return c.Save }, func(c *Config, v string) error {
		pts, err := ParseSavePolicy(v)
		if err != nil {
			return err
		}
		c.SavePoints = pts
		parts := make([]string, 0, 2*len(pts))
		for _, p := range pts {
			parts = append(parts, strconv.FormatInt(p.Seconds, 10), strconv.FormatInt(p.Changes, 10))
		}
		c.Save = strings.Join(parts, " ")
		return nil
	})
	def("dbfilename", true, func(c *Config) string { return c.DBFilename }, func(c *Config, v string) error {
		if v == "" || strings.ContainsRune(v, '/') || v == "." || v == ".." {
			return errors.New("dbfilename can't be a path, just a filename")
		}
		c.DBFilename = v
		return nil
	})
	intDir("key-load-delay", true, 0, 1e6, func(c *Config) *int { return &c.KeyLoadDelay })
	boolDir("appendonly", false, func(c *Config) *bool { return &c.AppendOnly })
	enumDir("appendfsync", true, []string{"always", "everysec", "no"}, func(c *Config) *string { return &c.AppendFsync })
	fileName := func(name string, f func(c *Config) *string) {
		def(name, false, func(c *Config) string { return *f(c) }, func(c *Config, v string) error {
			if v == "" || strings.ContainsRune(v, '/') || v == "." || v == ".." {
				return errors.New(name + " can't be a path, just a name")
			}
			*f(c) = v
			return nil
		})
	}
	fileName("appendfilename", func(c *Config) *string { return &c.AppendFilename })
	fileName("appenddirname", func(c *Config) *string { return &c.AppendDirname })
	intDir("auto-aof-rewrite-percentage", true, 0, math.MaxInt32, func(c *Config) *int { return &c.AutoAOFRewritePct })
	bytesDir("auto-aof-rewrite-min-size", true, 0, func(c *Config) *int64 { return &c.AutoAOFRewriteMin })
	boolDir("stop-writes-on-bgsave-error", true, func(c *Config) *bool { return &c.StopWritesOnBgsaveError })
	intDir("appendfsync-always-delay", true, 0, 100000, func(c *Config) *int { return &c.AOFGroupCommitDelay })
	def("daemonize", false, func(c *Config) string { return "no" }, func(c *Config, v string) error {
		if strings.ToLower(v) != "no" {
			return errors.New("daemonize is not supported: run shoal under a supervisor")
		}
		return nil
	})
	intDir("memcached-port", false, 0, 65535, func(c *Config) *int { return &c.MemcachedPort })
	intDir("admin-port", false, 0, 65535, func(c *Config) *int { return &c.AdminPort })
	def("admin-addr", false, func(c *Config) string { return c.AdminAddr }, func(c *Config, v string) error {
		if v != "" {
			if _, p, err := net.SplitHostPort(v); err != nil || p == "" {
				return errors.New("argument must be host:port")
			}
		}
		c.AdminAddr = v
		return nil
	})
	bytesDir("memcached-max-item-size", true, 1024, func(c *Config) *int64 { return &c.MemcachedMaxItem })
	intDir("io-threads", false, 0, 1024, func(c *Config) *int { return &c.IOThreads })
	intDir("gc-percent", true, 5, 1000, func(c *Config) *int { return &c.GCPercent })
	boolDir("cluster-enabled", false, func(c *Config) *bool { return &c.ClusterEnabled })
	def("replicaof", false, func(c *Config) string { return c.ReplicaOf }, func(c *Config, v string) error {
		f := strings.Fields(v)
		switch {
		case len(f) == 0 || len(f) == 2 && strings.EqualFold(f[0], "no") && strings.EqualFold(f[1], "one"):
			c.ReplicaOf = ""
			return nil
		case len(f) != 2:
			return errors.New("argument must be 'host port' or 'no one'")
		}
		if p, err := strconv.Atoi(f[1]); err != nil || p <= 0 || p > 65535 {
			return errors.New("invalid primary port")
		}
		c.ReplicaOf = f[0] + " " + f[1]
		return nil
	})
	directives["slaveof"] = directives["replicaof"]
	stringDir("masterauth", true, func(c *Config) *string { return &c.MasterAuth })
	stringDir("masteruser", true, func(c *Config) *string { return &c.MasterUser })
	bytesDir("repl-backlog-size", true, 16<<10, func(c *Config) *int64 { return &c.ReplBacklogSize })
	bytesDir("migrate-max-bytes-per-sec", true, 0, func(c *Config) *int64 { return &c.MigrateMaxBytesPerSec })
	intDir("repl-timeout", true, 1, math.MaxInt32, func(c *Config) *int { return &c.ReplTimeout })
	intDir("repl-ping-replica-period", true, 1, math.MaxInt32, func(c *Config) *int { return &c.ReplPingPeriod })
	intDir("repl-full-sync-after", true, 0, math.MaxInt32, func(c *Config) *int { return &c.ReplFullSyncAfter })
	intDir("repl-in-sync-lag", true, 1, math.MaxInt32, func(c *Config) *int { return &c.ReplInSyncLag })
	intDir("sync-replicas", true, 0, 1000, func(c *Config) *int { return &c.SyncReplicas })
	intDir("sync-timeout", true, 1, math.MaxInt32, func(c *Config) *int { return &c.SyncTimeout })
	intDir("repl-batch-delay", true, 0, 1000000, func(c *Config) *int { return &c.ReplBatchDelay })
	stringDir("manager", false, func(c *Config) *string { return &c.Manager })
	stringDir("cluster-announce-ip", false, func(c *Config) *string { return &c.ClusterAnnounceIP })
	intDir("cluster-weight", false, 1, 1000000, func(c *Config) *int { return &c.ClusterWeight })
	boolDir("standby", false, func(c *Config) *bool { return &c.Standby })
	stringDir("manager-token", false, func(c *Config) *string { return &c.ManagerToken })
	stringDir("manager-tls-ca-cert-file", false, func(c *Config) *string { return &c.ManagerCAFile })
	intDir("tls-port", false, 0, 65535, func(c *Config) *int { return &c.TLSPort })
	intDir("memcached-tls-port", false, 0, 65535, func(c *Config) *int { return &c.MemcachedTLSPort })
	stringDir("tls-cert-file", false, func(c *Config) *string { return &c.TLSCertFile })
	stringDir("tls-key-file", false, func(c *Config) *string { return &c.TLSKeyFile })
	stringDir("tls-ca-cert-file", false, func(c *Config) *string { return &c.TLSCACertFile })
	boolDir("tls-replication", false, func(c *Config) *bool { return &c.TLSReplication })
	enumDir("tls-auth-clients", false, []string{"yes", "no", "optional"}, func(c *Config) *string { return &c.TLSAuthClients })
}

// SavePoint is one "seconds changes" pair of the save policy: snapshot
// when at least Changes writes happened and Seconds passed since the
// last successful save.
type SavePoint struct{ Seconds, Changes int64 }

// ParseSavePolicy parses "900 1 300 10" (pairs); "" (or only spaces)
// turns automatic snapshots off.
func ParseSavePolicy(v string) ([]SavePoint, error) {
	f := strings.Fields(v)
	if len(f)%2 != 0 {
		return nil, errors.New("Invalid save parameters")
	}
	var pts []SavePoint
	for i := 0; i < len(f); i += 2 {
		secs, err1 := strconv.ParseInt(f[i], 10, 64)
		changes, err2 := strconv.ParseInt(f[i+1], 10, 64)
		if err1 != nil || err2 != nil || secs < 0 || changes < 0 {
			return nil, errors.New("Invalid save parameters")
		}
		pts = append(pts, SavePoint{Seconds: secs, Changes: changes})
	}
	return pts, nil
}

// LogDir is Dir/AppendDirname, where the log segments live.
func (c *Config) LogDir() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return filepath.Join(c.Dir, c.AppendDirname)
}

// SnapshotPath is Dir/DBFilename.
func (c *Config) SnapshotPath() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return filepath.Join(c.Dir, c.DBFilename)
}

func setOutputLimits(c *Config, v string) error {
	f := strings.Fields(v)
	if len(f) == 0 || len(f)%4 != 0 {
		return errors.New("wrong number of arguments")
	}
	next := map[string]OutputLimit{"normal": c.OutputNormal, "replica": c.OutputReplica, "pubsub": c.OutputPubsub}
	for i := 0; i < len(f); i += 4 {
		class := strings.ToLower(f[i])
		if class == "slave" {
			class = "replica"
		}
		if _, ok := next[class]; !ok {
			return errors.New("unrecognized client limit class: the user specified an invalid one, or 'master' which has no buffer limits")
		}
		hard, err1 := ParseBytes(f[i+1])
		soft, err2 := ParseBytes(f[i+2])
		secs, err3 := strconv.ParseInt(f[i+3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || hard < 0 || soft < 0 || secs < 0 {
			return errors.New("error in hard, soft or soft_seconds setting")
		}
		next[class] = OutputLimit{Hard: hard, Soft: soft, SoftSeconds: secs}
	}
	c.OutputNormal, c.OutputReplica, c.OutputPubsub = next["normal"], next["replica"], next["pubsub"]
	return nil
}

// ParseBytes parses a memory size as redis.conf does: 1k = 1000, 1kb = 1024,
// likewise m/mb, g/gb; a bare number is bytes.
func ParseBytes(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mul := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mul = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (mul > 1 && n > math.MaxInt64/mul) {
		return 0, fmt.Errorf("argument must be a memory value")
	}
	return n * mul, nil
}

// ErrUnknown is returned for a directive Shoal does not know.
var ErrUnknown = errors.New("unknown directive")

// Set sets one directive; running reports whether the server is up, in
// which case only mutable directives may change.
func (c *Config) Set(name, value string, running bool) error {
	name = strings.ToLower(name)
	if name == "user" {
		return c.addUser(value, running)
	}
	d, ok := directives[name]
	if !ok {
		return fmt.Errorf("%w '%s'", ErrUnknown, name)
	}
	if running && !d.mutable {
		return fmt.Errorf("can't set immutable config '%s'", name)
	}
	c.mu.Lock()
	err := d.set(c, value)
	if err == nil {
		err = c.validateLocked()
	}
	cb := c.onChange
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("'%s' %w", name, err)
	}
	if cb != nil && running {
		cb(name)
	}
	return nil
}

func (c *Config) validateLocked() error {
	if c.ProtoMaxBulkLen > 2<<30 {
		// Values are stored with 32-bit lengths; leave room for growth.
		return errors.New("proto-max-bulk-len must not exceed 2gb")
	}
	if c.MemcachedMaxItem > 1<<30 {
		return errors.New("memcached-max-item-size must not exceed 1gb (as memcached -I)")
	}
	if c.MemcachedPort != 0 && c.MemcachedPort == c.Port {
		return errors.New("memcached-port must differ from port")
	}
	if c.TLSPort != 0 && (c.TLSPort == c.Port || c.TLSPort == c.MemcachedPort || c.TLSPort == c.AdminPort) {
		return errors.New("tls-port must differ from port, memcached-port and admin-port")
	}
	if c.MemcachedTLSPort != 0 {
		switch {
		case c.MemcachedPort == 0:
			return errors.New("memcached-tls-port needs memcached-port (its TLS relay serves through the plaintext memcached port)")
		case c.MemcachedTLSPort == c.Port || c.MemcachedTLSPort == c.MemcachedPort || c.MemcachedTLSPort == c.TLSPort || c.MemcachedTLSPort == c.AdminPort:
			return errors.New("memcached-tls-port must differ from port, memcached-port, tls-port and admin-port")
		}
	}
	if c.AdminPort != 0 && (c.AdminPort == c.Port || c.AdminPort == c.MemcachedPort) {
		return errors.New("admin-port must differ from port and memcached-port")
	}
	if c.Dir == "" {
		return errors.New("dir must not be empty")
	}
	if c.QueryBufferLimit < c.ProtoMaxBulkLen/2 && c.QueryBufferLimit < 1<<20 {
		return errors.New("client-query-buffer-limit is too small for proto-max-bulk-len")
	}
	return nil
}

// Validate checks relations between settings.
func (c *Config) Validate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.validateLocked()
}

// OnChange registers fn to run after every successful runtime Set.
func (c *Config) OnChange(fn func(name string)) {
	c.mu.Lock()
	c.onChange = fn
	c.mu.Unlock()
}

// Get returns name → value for every directive matching the glob pattern.
func (c *Config) Get(pattern string, match func(pattern, s string) bool) [][2]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out [][2]string
	names := make([]string, 0, len(directives))
	for n := range directives {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if match(strings.ToLower(pattern), n) {
			out = append(out, [2]string{n, directives[n].get(c)})
		}
	}
	return out
}

// Read runs fn with the configuration read-locked.
func (c *Config) Read(fn func(c *Config)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c)
}

// ParseArgs applies redis-server style arguments: an optional config file
// path first, then "--name value..." pairs (a directive's value runs up to
// the next "--"). A directive given twice keeps the last value.
func (c *Config) ParseArgs(args []string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "--") {
		if err := c.LoadFile(args[0]); err != nil {
			return err
		}
		args = args[1:]
	}
	for i := 0; i < len(args); {
		a := args[i]
		if !strings.HasPrefix(a, "--") || len(a) == 2 {
			return fmt.Errorf("unexpected argument %q: directives are written --name value", a)
		}
		name := a[2:]
		j := i + 1
		var vals []string
		for j < len(args) && !strings.HasPrefix(args[j], "--") {
			vals = append(vals, args[j])
			j++
		}
		// "--save ''" arrives as an empty argument.
		v := strings.Join(vals, " ")
		if len(vals) == 0 && name == "standby" {
			v = "yes" // a flag: "--standby" alone
		}
		if err := c.Set(name, v, false); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// LoadFile reads redis.conf-style lines: "name value ...", '#' comments,
// values optionally in double quotes.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open config %q: %w", path, err)
	}
	defer f.Close()
	if abs, err := filepath.Abs(path); err == nil {
		c.mu.Lock()
		c.file = abs
		c.mu.Unlock()
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(t, " ")
		rest = strings.TrimSpace(rest)
		var vals []string
		for _, w := range strings.Fields(rest) {
			vals = append(vals, strings.Trim(w, "\""))
		}
		if err := c.Set(name, strings.Join(vals, " "), false); err != nil {
			return fmt.Errorf("config %q line %d: %w", path, line, err)
		}
	}
	return sc.Err()
}

// addUser appends a "user" directive. Its rules are checked when the
// server builds its users (the acl package), which reports the line.
func (c *Config) addUser(v string, running bool) error {
	if running {
		return errors.New("can't set immutable config 'user': change users with ACL SETUSER")
	}
	if strings.TrimSpace(v) == "" {
		return errors.New("'user' needs a name and rules")
	}
	c.mu.Lock()
	c.Users = append(c.Users, v)
	c.mu.Unlock()
	return nil
}

// SetError is a failed SetMany: the directive that failed and why.
type SetError struct {
	Name    string
	Unknown bool // no such directive
	Err     error
}

func (e *SetError) Error() string { return fmt.Sprintf("'%s' %v", e.Name, e.Err) }

// SetMany sets several directives at once, all or nothing: if one name is
// unknown, immutable (when running), given twice, or has a bad value, or
// the result fails validation, every directive keeps its old value.
func (c *Config) SetMany(pairs [][2]string, running bool) error {
	seen := make(map[string]bool, len(pairs))
	for i := range pairs {
		name := strings.ToLower(pairs[i][0])
		pairs[i][0] = name
		d, ok := directives[name]
		if !ok {
			return &SetError{Name: name, Unknown: true, Err: ErrUnknown}
		}
		if seen[name] {
			return &SetError{Name: name, Err: errors.New("duplicate parameter")}
		}
		seen[name] = true
		if running && !d.mutable {
			return &SetError{Name: name, Err: errors.New("can't set immutable config")}
		}
	}
	c.mu.Lock()
	old := make([]string, len(pairs))
	for i, p := range pairs {
		old[i] = directives[p[0]].get(c)
	}
	var failed *SetError
	for _, p := range pairs {
		if err := directives[p[0]].set(c, p[1]); err != nil {
			failed = &SetError{Name: p[0], Err: err}
			break
		}
	}
	if failed == nil {
		if err := c.validateLocked(); err != nil {
			failed = &SetError{Name: pairs[0][0], Err: err}
		}
	}
	if failed != nil {
		// Restore in reverse order; the old values were valid together.
		for i := len(pairs) - 1; i >= 0; i-- {
			_ = directives[pairs[i][0]].set(c, old[i])
		}
	}
	cb := c.onChange
	c.mu.Unlock()
	if failed != nil {
		return failed
	}
	if cb != nil && running {
		for _, p := range pairs {
			cb(p[0])
		}
	}
	return nil
}

// ErrNoFile is returned by Rewrite when the server started without a
// config file.
var ErrNoFile = errors.New("the server is running without a config file")

// File is the absolute path of the config file the server started with,
// or "".
func (c *Config) File() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.file
}

// Rewrite writes the running configuration back to the config file, the
// way CONFIG REWRITE does: lines of known directives get their current
// value (a directive given twice keeps one line), other lines (comments,
// unknown directives) are kept, and directives that differ from the
// defaults but were not in the file are appended. The file is replaced
// atomically (temp file, fsync, rename, fsync of the directory).
//
// users, when not nil, replaces the file's "user" lines (the first one's
// place keeps them; appended when the file had none): the server passes
// its current ACL users, so users changed with ACL SETUSER survive a
// restart, as with Redis. nil keeps the file's user lines as they are.
func (c *Config) Rewrite(users []string) error {
	path := c.File()
	if path == "" {
		return ErrNoFile
	}
	orig, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read config %q: %w", path, err)
	}
	def := Default()
	c.mu.RLock()
	var out []string
	done := map[string]bool{}
	for _, line := range strings.Split(strings.TrimRight(string(orig), "\n"), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			out = append(out, line)
			continue
		}
		name, _, _ := strings.Cut(t, " ")
		name = strings.ToLower(name)
		if name == "user" && users != nil {
			if !done["user"] {
				done["user"] = true
				for _, u := range users {
					out = append(out, "user "+u)
				}
			}
			continue
		}
		d, ok := directives[name]
		if !ok {
			out = append(out, line)
			continue
		}
		if done[name] {
			continue
		}
		done[name] = true
		out = append(out, name+" "+quoteValue(d.get(c)))
	}
	names := make([]string, 0, len(directives))
	for n := range directives {
		names = append(names, n)
	}
	sort.Strings(names)
	header := false
	for _, n := range names {
		d := directives[n]
		if done[n] || d.get(c) == d.get(def) {
			continue
		}
		if !header {
			out = append(out, "# Generated by CONFIG REWRITE")
			header = true
		}
		out = append(out, n+" "+quoteValue(d.get(c)))
	}
	if users != nil && !done["user"] && len(users) > 0 {
		if !header {
			out = append(out, "# Generated by CONFIG REWRITE")
		}
		for _, u := range users {
			out = append(out, "user "+u)
		}
	}
	c.mu.RUnlock()
	return writeAtomic(path, []byte(strings.Join(out, "\n")+"\n"))
}

func quoteValue(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".shoal-conf-*")
	if err != nil {
		return fmt.Errorf("rewrite config %q: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if st, serr := os.Stat(path); serr == nil {
			_ = os.Chmod(tmp, st.Mode().Perm())
		}
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewrite config %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
