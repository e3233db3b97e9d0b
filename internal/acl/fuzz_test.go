package acl

import (
	"slices"
	"strings"
	"testing"
)

// FuzzRules: any rule list either fails whole or yields a user whose
// description, applied to a new user, describes the same user (ACL LIST
// and CONFIG REWRITE depend on it); nothing panics.
func FuzzRules(f *testing.F) {
	for _, s := range []string{
		"on >pw ~* &* +@all", "on nopass ~a:* -@all +get +set", "+@all -@dangerous +acl|whoami",
		"reset on #0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "resetkeys ~x allkeys",
		"off <pw", "+client|info -client", "&ch.* resetchannels allchannels", "+config|get",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r := NewRegistry()
		if err := r.SetUser("u", strings.Fields(line)); err != nil {
			return
		}
		desc := r.Get("u").Describe()
		_, rules, err := ParseUserLine(strings.TrimPrefix(desc, "user "))
		if err != nil {
			t.Fatalf("description %q: %v", desc, err)
		}
		r2 := NewRegistry()
		if err := r2.SetUser("u", rules); err != nil {
			t.Fatalf("description %q does not apply: %v", desc, err)
		}
		if again := r2.Get("u").Describe(); again != desc {
			t.Fatalf("round trip of %q:\n %q\n %q", line, desc, again)
		}
		p, q := r.Get("u").Perms(), r2.Get("u").Perms()
		if !slices.Equal(p.cmds, q.cmds) || p.Unrestricted != q.Unrestricted || p.Enabled != q.Enabled || p.NoPass != q.NoPass ||
			!slices.Equal(p.Passwords, q.Passwords) || p.AllKeys != q.AllKeys || !slices.Equal(p.Keys, q.Keys) ||
			p.AllChannels != q.AllChannels || !slices.Equal(p.Channels, q.Channels) {
			t.Fatalf("%q: permissions differ after the round trip through %q", line, desc)
		}
	})
}
