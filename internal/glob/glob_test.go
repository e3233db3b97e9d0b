package glob

import (
	"strings"
	"testing"
	"time"
)

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

func TestMatchPathologicalIsFast(t *testing.T) {
	p := strings.Repeat("*a", 40) + "*b"
	s := strings.Repeat("a", 5000)
	start := time.Now()
	if Match(p, s) {
		t.Fatal("matched")
	}
	// Not a timing assertion on speed: an exponential matcher would not
	// finish at all; this one is quadratic.
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("took %v", d)
	}
}

// Reference recursive matcher (the previous implementation) to compare
// against on small inputs.
func naive(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := 0; i <= len(s); i++ {
				if naive(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if len(s) == 0 {
				return false
			}
			n, ok := matchOne(p, 0, s[0])
			if !ok {
				return false
			}
			p, s = p[n:], s[1:]
		}
	}
	return len(s) == 0
}

func FuzzMatchAgreesWithNaive(f *testing.F) {
	for _, c := range [][2]string{{"a*b?c", "axxbyc"}, {"[a-c]*\\*", "b*"}, {"*[^x]", "xy"}, {"h[", "h["}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 12 || len(s) > 24 {
			return // keep the exponential reference cheap
		}
		if got, want := Match(p, s), naive(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, naive %v", p, s, got, want)
		}
	})
}
