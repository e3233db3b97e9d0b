// Package command is the command table: every command's name, arity,
// flags and key positions. The storage node uses it to validate, lock and
// dispatch; the proxy (later) uses the same table to route by key.
package command

import "strings"

// Flags describe how a command behaves.
type Flags uint32

const (
	Write          Flags = 1 << iota // modifies the keyspace
	ReadOnly                         // reads only
	DenyOOM                          // refused with OOM when over maxmemory (and eviction cannot help)
	Admin                            // server administration
	PubSub                           // pub/sub command
	Fast                             // O(1) or O(log n)
	Blocking                         // may block the client
	NoAuth                           // allowed before AUTH
	NoMulti                          // executes immediately even inside MULTI (MULTI, EXEC, DISCARD, WATCH...)
	SubscribeOK                      // allowed in RESP2 subscribed mode
	AllSlots                         // touches the whole keyspace (KEYS, SCAN, FLUSHALL...)
	Loading                          // allowed while loading
	NoWatchInMulti                   // WATCH inside MULTI is an error
)

// Spec is one command's entry.
type Spec struct {
	Name  string // lower case
	Arity int    // >0 exact argument count (command name included); <0 at least -Arity
	Flags Flags
	// Key positions for the simple case: FirstKey..LastKey (negative counts
	// from the end) every Step. FirstKey 0 = no keys.
	FirstKey, LastKey, Step int
	// Keys overrides the positions for commands with a numkeys argument or
	// a subcommand; it returns argument indexes (nil = none or malformed).
	Keys func(args [][]byte) []int
	// Categories for COMMAND INFO / ACL CAT.
	Categories []string
	// ID is the command's index in ByID (0..len(ByID)-1, in registration
	// order): per-command statistics index arrays by it instead of
	// looking names up.
	ID int
}

// Table maps lower-case names to specs.
var Table = map[string]*Spec{}

// ByID lists every spec by its ID.
var ByID []*Spec

func add(name string, arity int, flags Flags, first, last, step int, cats ...string) *Spec {
	if _, dup := Table[name]; dup {
		panic("BUG: duplicate command " + name)
	}
	s := &Spec{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: step, Categories: cats, ID: len(ByID)}
	Table[name] = s
	ByID = append(ByID, s)
	return s
}

// Lookup finds a command by name in any case without allocating.
func Lookup(name []byte) *Spec {
	var buf [32]byte
	if len(name) > len(buf) {
		return Table[strings.ToLower(string(name))]
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return Table[string(buf[:len(name)])]
}

// ArityOK checks the argument count (args includes the command name).
func (s *Spec) ArityOK(n int) bool {
	if s.Arity >= 0 {
		return n == s.Arity
	}
	return n >= -s.Arity
}

// KeyIndexes appends the argument indexes of the keys in args to dst.
func (s *Spec) KeyIndexes(args [][]byte, dst []int) []int {
	if s.Keys != nil {
		return append(dst, s.Keys(args)...)
	}
	if s.FirstKey == 0 {
		return dst
	}
	last := s.LastKey
	if last < 0 {
		last = len(args) + last
	}
	if last >= len(args) {
		last = len(args) - 1
	}
	for i := s.FirstKey; i <= last; i += s.Step {
		dst = append(dst, i)
	}
	return dst
}

// ACLCategories derives Redis's ACL categories ("@write", ...) from the
// flags and the table's category (COMMAND INFO, ACL CAT and ACL rules).
func (sp *Spec) ACLCategories() []string {
	var out []string
	seen := map[string]bool{}
	add := func(c string) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	f := sp.Flags
	if f&Write != 0 {
		add("@write")
	}
	if f&ReadOnly != 0 {
		add("@read")
	}
	for _, c := range sp.Categories {
		if c == "fast" {
			continue
		}
		add("@" + c)
	}
	if f&Admin != 0 {
		add("@admin")
		add("@dangerous")
	}
	if f&PubSub != 0 {
		add("@pubsub")
	}
	if f&Blocking != 0 {
		add("@blocking")
	}
	if f&Fast != 0 {
		add("@fast")
	} else {
		add("@slow")
	}
	return out
}

func parseNum(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// numkeysAt returns a Keys func for "... numkeys key [key ...]" with
// numkeys at index pos; extra lists fixed key indexes (e.g. a destination).
func numkeysAt(pos int, extra ...int) func(args [][]byte) []int {
	return func(args [][]byte) []int {
		if pos >= len(args) {
			return nil
		}
		n, ok := parseNum(args[pos])
		if !ok || n <= 0 || pos+n >= len(args) {
			return nil
		}
		out := append([]int(nil), extra...)
		for i := 0; i < n; i++ {
			out = append(out, pos+1+i)
		}
		return out
	}
}

const (
	w  = Write | DenyOOM
	wf = Write | DenyOOM | Fast
	r  = ReadOnly
	rf = ReadOnly | Fast
)

func init() {
	// keyspace
	add("del", -2, Write, 1, -1, 1, "keyspace")
	add("unlink", -2, Write|Fast, 1, -1, 1, "keyspace")
	add("exists", -2, rf, 1, -1, 1, "keyspace")
	add("type", 2, rf, 1, 1, 1, "keyspace")
	for _, n := range []string{"expire", "pexpire", "expireat", "pexpireat"} {
		add(n, -3, Write|Fast, 1, 1, 1, "keyspace")
	}
	for _, n := range []string{"ttl", "pttl", "expiretime", "pexpiretime"} {
		add(n, 2, rf, 1, 1, 1, "keyspace")
	}
	add("persist", 2, Write|Fast, 1, 1, 1, "keyspace")
	add("rename", 3, Write, 1, 2, 1, "keyspace")
	add("renamenx", 3, Write|Fast, 1, 2, 1, "keyspace")
	add("keys", 2, r|AllSlots, 0, 0, 0, "keyspace", "dangerous")
	add("scan", -2, r|AllSlots, 0, 0, 0, "keyspace")
	add("randomkey", 1, r|AllSlots, 0, 0, 0, "keyspace")
	add("dbsize", 1, rf|AllSlots, 0, 0, 0, "keyspace")
	add("flushdb", -1, Write|AllSlots, 0, 0, 0, "keyspace", "dangerous")
	add("flushall", -1, Write|AllSlots, 0, 0, 0, "keyspace", "dangerous")
	add("touch", -2, rf, 1, -1, 1, "keyspace")
	add("object", -2, r, 2, 2, 1, "keyspace")
	add("copy", -3, w, 1, 2, 1, "keyspace")
	add("memory", -2, r, 0, 0, 0, "keyspace").Keys = func(args [][]byte) []int {
		if len(args) >= 3 && strings.EqualFold(string(args[1]), "usage") {
			return []int{2}
		}
		return nil
	}

	// strings
	add("get", 2, rf, 1, 1, 1, "string")
	add("set", -3, w, 1, 1, 1, "string")
	add("setnx", 3, wf, 1, 1, 1, "string")
	add("setex", 4, w, 1, 1, 1, "string")
	add("psetex", 4, w, 1, 1, 1, "string")
	add("getset", 3, wf, 1, 1, 1, "string")
	add("getdel", 2, Write|Fast, 1, 1, 1, "string")
	add("getex", -2, Write|Fast, 1, 1, 1, "string")
	add("mget", -2, rf, 1, -1, 1, "string")
	add("mset", -3, w, 1, -1, 2, "string")
	add("msetnx", -3, w, 1, -1, 2, "string")
	add("append", 3, wf, 1, 1, 1, "string")
	add("strlen", 2, rf, 1, 1, 1, "string")
	for _, n := range []string{"incr", "decr"} {
		add(n, 2, wf, 1, 1, 1, "string")
	}
	for _, n := range []string{"incrby", "decrby", "incrbyfloat"} {
		add(n, 3, wf, 1, 1, 1, "string")
	}
	add("getrange", 4, r, 1, 1, 1, "string")
	add("substr", 4, r, 1, 1, 1, "string")
	add("setrange", 4, w, 1, 1, 1, "string")
	add("lcs", -3, r, 1, 2, 1, "string")
	add("setbit", 4, w, 1, 1, 1, "bitmap")
	add("getbit", 3, rf, 1, 1, 1, "bitmap")
	add("bitcount", -2, r, 1, 1, 1, "bitmap")
	add("bitpos", -3, r, 1, 1, 1, "bitmap")
	add("bitop", -4, w, 2, -1, 1, "bitmap")

	// hashes
	add("hset", -4, wf, 1, 1, 1, "hash")
	add("hmset", -4, wf, 1, 1, 1, "hash")
	add("hsetnx", 4, wf, 1, 1, 1, "hash")
	add("hget", 3, rf, 1, 1, 1, "hash")
	add("hmget", -3, rf, 1, 1, 1, "hash")
	add("hdel", -3, Write|Fast, 1, 1, 1, "hash")
	add("hexists", 3, rf, 1, 1, 1, "hash")
	add("hlen", 2, rf, 1, 1, 1, "hash")
	add("hkeys", 2, r, 1, 1, 1, "hash")
	add("hvals", 2, r, 1, 1, 1, "hash")
	add("hgetall", 2, r, 1, 1, 1, "hash")
	add("hincrby", 4, wf, 1, 1, 1, "hash")
	add("hincrbyfloat", 4, wf, 1, 1, 1, "hash")
	add("hstrlen", 3, rf, 1, 1, 1, "hash")
	add("hscan", -3, r, 1, 1, 1, "hash")
	add("hrandfield", -2, r, 1, 1, 1, "hash")

	// lists
	add("lpush", -3, wf, 1, 1, 1, "list")
	add("rpush", -3, wf, 1, 1, 1, "list")
	add("lpushx", -3, wf, 1, 1, 1, "list")
	add("rpushx", -3, wf, 1, 1, 1, "list")
	add("lpop", -2, Write|Fast, 1, 1, 1, "list")
	add("rpop", -2, Write|Fast, 1, 1, 1, "list")
	add("llen", 2, rf, 1, 1, 1, "list")
	add("lrange", 4, r, 1, 1, 1, "list")
	add("lindex", 3, r, 1, 1, 1, "list")
	add("lset", 4, w, 1, 1, 1, "list")
	add("linsert", 5, w, 1, 1, 1, "list")
	add("lrem", 4, Write, 1, 1, 1, "list")
	add("ltrim", 4, Write, 1, 1, 1, "list")
	add("lpos", -3, r, 1, 1, 1, "list")
	add("lmove", 5, w, 1, 2, 1, "list")
	add("rpoplpush", 3, w, 1, 2, 1, "list")
	add("lmpop", -4, Write, 0, 0, 0, "list").Keys = numkeysAt(1)
	add("blpop", -3, Write|Blocking, 1, -2, 1, "list")
	add("brpop", -3, Write|Blocking, 1, -2, 1, "list")
	add("blmove", 6, w|Blocking, 1, 2, 1, "list")
	add("brpoplpush", 4, w|Blocking, 1, 2, 1, "list")
	add("blmpop", -5, Write|Blocking, 0, 0, 0, "list").Keys = numkeysAt(2)

	// sets
	add("sadd", -3, wf, 1, 1, 1, "set")
	add("srem", -3, Write|Fast, 1, 1, 1, "set")
	add("smembers", 2, r, 1, 1, 1, "set")
	add("sismember", 3, rf, 1, 1, 1, "set")
	add("smismember", -3, rf, 1, 1, 1, "set")
	add("scard", 2, rf, 1, 1, 1, "set")
	add("spop", -2, Write|Fast, 1, 1, 1, "set")
	add("srandmember", -2, r, 1, 1, 1, "set")
	add("smove", 4, wf, 1, 2, 1, "set")
	add("sinter", -2, r, 1, -1, 1, "set")
	add("sunion", -2, r, 1, -1, 1, "set")
	add("sdiff", -2, r, 1, -1, 1, "set")
	add("sinterstore", -3, w, 1, -1, 1, "set")
	add("sunionstore", -3, w, 1, -1, 1, "set")
	add("sdiffstore", -3, w, 1, -1, 1, "set")
	add("sintercard", -3, r, 0, 0, 0, "set").Keys = numkeysAt(1)
	add("sscan", -3, r, 1, 1, 1, "set")

	// sorted sets
	add("zadd", -4, wf, 1, 1, 1, "sortedset")
	add("zincrby", 4, wf, 1, 1, 1, "sortedset")
	add("zrem", -3, Write|Fast, 1, 1, 1, "sortedset")
	add("zscore", 3, rf, 1, 1, 1, "sortedset")
	add("zmscore", -3, rf, 1, 1, 1, "sortedset")
	add("zcard", 2, rf, 1, 1, 1, "sortedset")
	add("zcount", 4, rf, 1, 1, 1, "sortedset")
	add("zlexcount", 4, rf, 1, 1, 1, "sortedset")
	for _, n := range []string{"zrange", "zrangebyscore", "zrevrange", "zrevrangebyscore", "zrangebylex", "zrevrangebylex"} {
		add(n, -4, r, 1, 1, 1, "sortedset")
	}
	add("zrangestore", -5, w, 1, 2, 1, "sortedset")
	add("zrank", -3, rf, 1, 1, 1, "sortedset")
	add("zrevrank", -3, rf, 1, 1, 1, "sortedset")
	add("zpopmin", -2, Write|Fast, 1, 1, 1, "sortedset")
	add("zpopmax", -2, Write|Fast, 1, 1, 1, "sortedset")
	add("bzpopmin", -3, Write|Fast|Blocking, 1, -2, 1, "sortedset")
	add("bzpopmax", -3, Write|Fast|Blocking, 1, -2, 1, "sortedset")
	add("zmpop", -4, Write, 0, 0, 0, "sortedset").Keys = numkeysAt(1)
	add("bzmpop", -5, Write|Blocking, 0, 0, 0, "sortedset").Keys = numkeysAt(2)
	add("zunionstore", -4, w, 0, 0, 0, "sortedset").Keys = numkeysAt(2, 1)
	add("zinterstore", -4, w, 0, 0, 0, "sortedset").Keys = numkeysAt(2, 1)
	add("zdiffstore", -4, w, 0, 0, 0, "sortedset").Keys = numkeysAt(2, 1)
	add("zunion", -3, r, 0, 0, 0, "sortedset").Keys = numkeysAt(1)
	add("zinter", -3, r, 0, 0, 0, "sortedset").Keys = numkeysAt(1)
	add("zdiff", -3, r, 0, 0, 0, "sortedset").Keys = numkeysAt(1)
	add("zintercard", -3, r, 0, 0, 0, "sortedset").Keys = numkeysAt(1)
	add("zremrangebyscore", 4, Write, 1, 1, 1, "sortedset")
	add("zremrangebyrank", 4, Write, 1, 1, 1, "sortedset")
	add("zremrangebylex", 4, Write, 1, 1, 1, "sortedset")
	add("zscan", -3, r, 1, 1, 1, "sortedset")
	add("zrandmember", -2, r, 1, 1, 1, "sortedset")

	// transactions
	add("multi", 1, Fast|NoMulti|Loading, 0, 0, 0, "transaction")
	add("exec", 1, NoMulti|Loading, 0, 0, 0, "transaction")
	add("discard", 1, Fast|NoMulti|Loading, 0, 0, 0, "transaction")
	add("watch", -2, Fast|NoMulti|Loading, 1, -1, 1, "transaction")
	add("unwatch", 1, Fast|NoMulti|Loading, 0, 0, 0, "transaction")

	// pub/sub
	add("subscribe", -2, PubSub|SubscribeOK|Loading, 0, 0, 0, "pubsub")
	add("unsubscribe", -1, PubSub|SubscribeOK|Loading, 0, 0, 0, "pubsub")
	add("psubscribe", -2, PubSub|SubscribeOK|Loading, 0, 0, 0, "pubsub")
	add("punsubscribe", -1, PubSub|SubscribeOK|Loading, 0, 0, 0, "pubsub")
	add("publish", 3, PubSub|Fast|Loading, 0, 0, 0, "pubsub")
	add("pubsub", -2, PubSub|Loading, 0, 0, 0, "pubsub")

	// connection and server
	add("ping", -1, Fast|SubscribeOK|Loading, 0, 0, 0, "connection")
	add("echo", 2, Fast|Loading, 0, 0, 0, "connection")
	add("quit", -1, Fast|NoAuth|SubscribeOK|Loading|NoMulti, 0, 0, 0, "connection")
	add("reset", 1, Fast|NoAuth|SubscribeOK|Loading|NoMulti, 0, 0, 0, "connection")
	add("select", 2, Fast|Loading, 0, 0, 0, "connection")
	add("auth", -2, Fast|NoAuth|Loading, 0, 0, 0, "connection")
	add("hello", -1, Fast|NoAuth|Loading, 0, 0, 0, "connection")
	add("client", -2, Admin|Loading, 0, 0, 0, "connection")
	add("info", -1, Loading, 0, 0, 0, "dangerous")
	add("config", -2, Admin|Loading, 0, 0, 0, "admin")
	add("acl", -2, Admin|Loading, 0, 0, 0, "admin")
	add("command", -1, Loading, 0, 0, 0, "connection")
	add("time", 1, Fast|Loading, 0, 0, 0, "fast")
	add("lastsave", 1, Fast|Loading, 0, 0, 0, "admin")
	add("save", 1, Admin|NoMulti, 0, 0, 0, "admin")
	add("bgsave", -1, Admin, 0, 0, 0, "admin")
	add("bgrewriteaof", 1, Admin|NoMulti, 0, 0, 0, "admin")
	add("slowlog", -2, Admin|Loading, 0, 0, 0, "admin")
	add("latency", -2, Admin|Loading, 0, 0, 0, "admin")
	add("debug", -2, Admin|Loading, 0, 0, 0, "admin")
	add("shutdown", -1, Admin|Loading|NoMulti, 0, 0, 0, "admin")
	add("role", 1, Fast|Loading, 0, 0, 0, "admin")
	add("replicaof", 3, Admin|NoMulti|Loading, 0, 0, 0, "admin")
	add("slaveof", 3, Admin|NoMulti|Loading, 0, 0, 0, "admin")
	add("wait", 3, 0, 0, 0, 0, "connection")
	add("replconf", -1, Admin|Loading, 0, 0, 0, "admin")
	add("psync", -3, Admin|NoMulti, 0, 0, 0, "admin")
	add("sync", 1, Admin|NoMulti, 0, 0, 0, "admin")

	// cluster: CLUSTER's subcommands read the local keyspace slot by
	// slot (COUNTKEYSINSLOT, GETKEYSINSLOT), hence AllSlots: inside EXEC
	// the transaction then holds every slot and the handler locks none.
	// A proxy answers CLUSTER itself; it must not fan it out.
	add("cluster", -2, Loading|AllSlots, 0, 0, 0)
	add("readonly", 1, Fast|Loading, 0, 0, 0, "connection")
	add("readwrite", 1, Fast|Loading, 0, 0, 0, "connection")
	add("asking", 1, Fast, 0, 0, 0, "connection")
}
