package main

import "testing"

func TestKeySlot(t *testing.T) {
	for k, want := range map[string]uint16{"foo": 12182, "123456789": 0x31C3 % 16384, "{user1000}.following": 3443, "{user1000}.followers": 3443, "foo{}{bar}": 8363} {
		if got := keySlot([]byte(k)); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", k, got, want)
		}
	}
}
