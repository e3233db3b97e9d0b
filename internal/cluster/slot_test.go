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
		"key:000000012345":     SlotByteAtATime("key:000000012345"),
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

// SlotByteAtATime is the textbook CRC-16/XMODEM, bit by bit, as the
// reference for the table-driven versions.
func SlotByteAtATime(k string) int {
	var crc uint16
	b := HashTag([]byte(k))
	for _, c := range b {
		crc ^= uint16(c) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc & (NumSlots - 1))
}

// Every length around the 8-byte steps agrees with the bitwise CRC.
func TestCRC16Lengths(t *testing.T) {
	b := make([]byte, 0, 40)
	for n := 0; n < 40; n++ {
		if got, want := Slot(b), SlotByteAtATime(string(b)); got != want {
			t.Fatalf("len %d: %d, want %d", n, got, want)
		}
		b = append(b, byte(n*37+11))
	}
}

func BenchmarkSlot16(b *testing.B) {
	k := []byte("key:000000012345")
	for b.Loop() {
		Slot(k)
	}
}

func FuzzSlotAgree(f *testing.F) {
	for _, s := range []string{"a{b}c", "{}", "{", "}{x}", "x{y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if Slot([]byte(k)) != SlotString(k) || Slot([]byte(k)) != SlotByteAtATime(k) {
			t.Fatalf("disagree on %q", k)
		}
	})
}
