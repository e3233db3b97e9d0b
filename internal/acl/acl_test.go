package acl

import (
	"strings"
	"testing"

	"shoal/internal/command"
)

func args(s string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(s) {
		out = append(out, []byte(f))
	}
	return out
}

func check(p *Perms, user, cmd string) string {
	a := args(cmd)
	return p.Check(user, command.Lookup(a[0]), a)
}

func TestDefaultUserUnrestricted(t *testing.T) {
	r := NewRegistry()
	if r.Restricted() {
		t.Fatal("a fresh registry is restricted")
	}
	u, ok := r.Authenticate("default", []byte("anything"))
	if !ok || u.Name != "default" {
		t.Fatal("nopass default user refused a password")
	}
	if got := u.Describe(); got != "user default on nopass ~* &* +@all" {
		t.Errorf("describe = %q", got)
	}
	r.SetDefaultPassword("pw")
	if r.Restricted() {
		t.Error("a password alone must not restrict commands")
	}
	if _, ok := r.Authenticate("default", []byte("x")); ok {
		t.Error("wrong password accepted")
	}
	if _, ok := r.Authenticate("default", []byte("pw")); !ok {
		t.Error("requirepass refused")
	}
	r.SetDefaultPassword("")
	if !r.Default().Perms().NoPass {
		t.Error("empty requirepass must make the default user nopass")
	}
}

func TestRulesAndChecks(t *testing.T) {
	r := NewRegistry()
	if err := r.SetUser("alice", strings.Fields("on >secret ~app:* -@all +@read +set")); err != nil {
		t.Fatal(err)
	}
	if !r.Restricted() {
		t.Fatal("a limited user must turn the checks on")
	}
	u, ok := r.Authenticate("alice", []byte("secret"))
	if !ok {
		t.Fatal("alice refused")
	}
	p := u.Perms()
	for cmd, want := range map[string]string{
		"get app:1":            "",
		"set app:1 v":          "",
		"mget app:1 app:2":     "",
		"mget app:1 other":     ErrNoPermKey,
		"get other":            ErrNoPermKey,
		"del app:1":            NoPermCommand("alice", "del"),
		"flushall":             NoPermCommand("alice", "flushall"),
		"config get x":         NoPermCommand("alice", "config"),
		"zunion 2 app:a other": ErrNoPermKey, // numkeys positions
		"publish ch m":         NoPermCommand("alice", "publish"),
		"auth bob pw":          "", // no-auth commands: always allowed (Redis)
		"hello 3":              "",
	} {
		if got := check(p, "alice", cmd); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	// Categories: -@dangerous after +@all keeps writes, drops admin.
	if err := r.SetUser("bob", strings.Fields("on nopass allkeys allchannels +@all -@dangerous")); err != nil {
		t.Fatal(err)
	}
	b := r.Get("bob").Perms()
	for cmd, want := range map[string]string{
		"set k v":      "",
		"publish ch m": "",
		"keys *":       NoPermCommand("bob", "keys"),
		"flushdb":      NoPermCommand("bob", "flushdb"),
		"config get x": NoPermCommand("bob", "config"),
		"shutdown":     NoPermCommand("bob", "shutdown"),
	} {
		if got := check(b, "bob", cmd); got != want {
			t.Errorf("bob %s: %q, want %q", cmd, got, want)
		}
	}
	if got := r.Get("bob").Describe(); got != "user bob on nopass ~* &* +@all -@dangerous" {
		t.Errorf("describe = %q", got)
	}
	// Channels: publish by glob, psubscribe by the literal pattern.
	if err := r.SetUser("carol", strings.Fields("on nopass ~* &news.* +@all")); err != nil {
		t.Fatal(err)
	}
	c := r.Get("carol").Perms()
	for cmd, want := range map[string]string{
		"publish news.a m":   "",
		"publish sport m":    ErrNoPermCh,
		"subscribe news.x":   "",
		"subscribe news.x b": ErrNoPermCh,
		"psubscribe news.*":  "",
		"psubscribe n*":      ErrNoPermCh,
	} {
		if got := check(c, "carol", cmd); got != want {
			t.Errorf("carol %s: %q, want %q", cmd, got, want)
		}
	}
}

func TestSetUserAllOrNothing(t *testing.T) {
	r := NewRegistry()
	if err := r.SetUser("alice", strings.Fields("on >a ~* +get")); err != nil {
		t.Fatal(err)
	}
	before := r.Get("alice").Describe()
	err := r.SetUser("alice", strings.Fields("+set +nosuchcommand"))
	if err == nil || err.Error() != "Error in ACL SETUSER modifier '+nosuchcommand': Unknown command or category name in ACL" {
		t.Fatalf("err = %v", err)
	}
	if got := r.Get("alice").Describe(); got != before {
		t.Errorf("a failed SETUSER changed the user: %q → %q", before, got)
	}
	for _, bad := range []string{"+@nosuch", "~*x garbage", "#abc", "<notapassword"} {
		if err := r.SetUser("alice", strings.Fields(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := r.SetUser("alice", []string{"~*", "~x"}); err == nil {
		t.Error("a pattern after ~* accepted")
	}
}

func TestPasswordsAndFlags(t *testing.T) {
	r := NewRegistry()
	h := HashPassword("two")
	if err := r.SetUser("u", []string{"on", ">one", "#" + h}); err != nil {
		t.Fatal(err)
	}
	for pass, want := range map[string]bool{"one": true, "two": true, "three": false} {
		if _, ok := r.Authenticate("u", []byte(pass)); ok != want {
			t.Errorf("password %q: %v", pass, ok)
		}
	}
	if err := r.SetUser("u", []string{"<one", "!" + h}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Authenticate("u", []byte("one")); ok {
		t.Error("removed password accepted")
	}
	if err := r.SetUser("u", []string{"nopass", "off"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Authenticate("u", []byte("x")); ok {
		t.Error("disabled user accepted")
	}
	if _, ok := r.Authenticate("nobody", []byte("x")); ok {
		t.Error("unknown user accepted")
	}
	if err := r.SetUser("u", []string{"on", "reset"}); err != nil {
		t.Fatal(err)
	}
	if got := r.Get("u").Describe(); got != "user u off resetkeys resetchannels -@all" {
		t.Errorf("after reset: %q", got)
	}
}

func TestDescribeRoundTrip(t *testing.T) {
	r := NewRegistry()
	rules := "on >pw ~a:* ~b &c +@all -@write +set -flushall"
	if err := r.SetUser("x", strings.Fields(rules)); err != nil {
		t.Fatal(err)
	}
	desc := r.Get("x").Describe()
	name, again, err := ParseUserLine(strings.TrimPrefix(desc, "user "))
	if err != nil || name != "x" {
		t.Fatal(name, err)
	}
	r2 := NewRegistry()
	if err := r2.SetUser("x", again); err != nil {
		t.Fatal(err)
	}
	if got := r2.Get("x").Describe(); got != desc {
		t.Errorf("round trip: %q → %q", desc, got)
	}
	p := r2.Get("x").Perms()
	for cmd, want := range map[string]string{
		"set a:1 v": "",
		"get b":     "",
		"get c":     ErrNoPermKey,
		"del a:1":   NoPermCommand("x", "del"),
	} {
		if got := check(p, "x", cmd); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
}

func TestDelUser(t *testing.T) {
	r := NewRegistry()
	if _, err := r.DelUser("default"); err != ErrDeleteDefault {
		t.Fatalf("deleting default: %v", err)
	}
	if err := r.SetUser("a", strings.Fields("on nopass ~* &* +@all")); err != nil {
		t.Fatal(err)
	}
	held := r.Get("a")
	gone, err := r.DelUser("a", "missing")
	if err != nil || len(gone) != 1 || gone[0] != held {
		t.Fatalf("DelUser = %v, %v", gone, err)
	}
	if r.Get("a") != nil {
		t.Fatal("a still listed")
	}
	// A connection still holding the deleted user may run nothing.
	if got := check(held.Perms(), "a", "get k"); got != NoPermCommand("a", "get") {
		t.Errorf("deleted user ran a command: %q", got)
	}
	if r.Restricted() {
		t.Error("only the default user left: the checks must be off")
	}
}

func TestCategoryCommands(t *testing.T) {
	cmds, ok := CategoryCommands("dangerous")
	if !ok {
		t.Fatal("dangerous unknown")
	}
	for _, want := range []string{"flushall", "keys", "config", "acl"} {
		found := false
		for _, c := range cmds {
			found = found || c == want
		}
		if !found {
			t.Errorf("%s not in @dangerous", want)
		}
	}
	if _, ok := CategoryCommands("nosuch"); ok {
		t.Error("unknown category accepted")
	}
}

// The fast path's cost: a registry with only the default user.
func BenchmarkRestricted(b *testing.B) {
	r := NewRegistry()
	n := 0
	for i := 0; i < b.N; i++ {
		if r.Restricted() {
			n++
		}
	}
	if n != 0 {
		b.Fatal("restricted")
	}
}

func TestSubcommands(t *testing.T) {
	r := NewRegistry()
	if err := r.SetUser("app", strings.Fields("on nopass ~* &* +@all -@dangerous")); err != nil {
		t.Fatal(err)
	}
	p := r.Get("app").Perms()
	for cmd, want := range map[string]string{
		"acl whoami":            "",
		"ACL WhoAmI":            "",
		"client info":           "",
		"client setname x":      "",
		"cluster slots":         "",
		"acl setuser x on":      NoPermCommand("app", "acl"),
		"client kill 1.2.3.4:5": NoPermCommand("app", "client"),
		"cluster slotsync 1":    NoPermCommand("app", "cluster"),
	} {
		if got := check(p, "app", cmd); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	if err := r.SetUser("ro", strings.Fields("on nopass ~* -@all +get +acl|whoami")); err != nil {
		t.Fatal(err)
	}
	q := r.Get("ro").Perms()
	if got := check(q, "ro", "acl whoami"); got != "" {
		t.Errorf("+acl|whoami: %q", got)
	}
	if got := check(q, "ro", "acl cat"); got != NoPermCommand("ro", "acl|cat") {
		t.Errorf("acl cat: %q", got)
	}
	if err := r.SetUser("ro", []string{"+config|get"}); err == nil {
		t.Error("a subcommand without its own permission accepted")
	}
	// +client allows every CLIENT subcommand.
	if err := r.SetUser("ro", []string{"+client"}); err != nil {
		t.Fatal(err)
	}
	if got := check(r.Get("ro").Perms(), "ro", "client info"); got != "" {
		t.Errorf("+client, client info: %q", got)
	}
}
