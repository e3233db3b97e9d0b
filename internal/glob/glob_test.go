package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true}, {"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true}, {"h[a-b]llo", "hcllo", false}, {"a\\*b", "a*b", true},
		{"a\\*b", "axb", false}, {"*c", "abc", true}, {"a*c*e", "abcde", true}, {"[", "a", false},
		{"user:*:name", "user:1:name", true}, {"", "", true}, {"", "a", false},
	}
	for _, c := range cases {
		if got := Match(c.p, c.s); got != c.want {
			t.Errorf("Match(%q,%q)=%v want %v", c.p, c.s, got, c.want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a*[b-c]?\\x", "abbx")
	f.Fuzz(func(t *testing.T, p, s string) {
		Match(p, s) // must not panic or hang
	})
}
