package cluster

import "testing"

func TestSlotKnownValues(t *testing.T) {
	// Values from Redis Cluster (CLUSTER KEYSLOT).
	cases := map[string]int{
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"foo{}{bar}":           8363,
		"foo{{bar}}zap":        4015,
		"foo{bar}{zap}":        5061,
		"":                     0,
		"123456789":            12739,
	}
	for k, want := range cases {
		if got := Slot([]byte(k)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", k, got, want)
		}
		if got := SlotString(k); got != want {
			t.Errorf("SlotString(%q) = %d, want %d", k, got, want)
		}
	}
}

func FuzzSlotAgree(f *testing.F) {
	for _, s := range []string{"a{b}c", "{}", "{", "}{x}", "x{y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if Slot([]byte(k)) != SlotString(k) {
			t.Fatalf("disagree on %q", k)
		}
	})
}
