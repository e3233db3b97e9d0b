// Package cluster holds what every node agrees on about data placement:
// the slot function (CRC16 of the key or its {hash tag}, mod 16384, exactly
// as Redis Cluster computes it).
package cluster

import "unsafe"

// NumSlots is the number of virtual nodes the keyspace is cut into.
const NumSlots = 16384

// crcTables[k][i] is the CRC of byte i followed by k zero bytes (from a
// zero register); crcTables[0] is the classic byte-at-a-time table.
var crcTables [8][256]uint16

func init() {
	for i := 0; i < 256; i++ {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		crcTables[0][i] = crc
	}
	for k := 1; k < 8; k++ {
		for i := 0; i < 256; i++ {
			c := crcTables[k-1][i]
			crcTables[k][i] = c<<8 ^ crcTables[0][byte(c>>8)]
		}
	}
}

// CRC16 is CRC-16/XMODEM (poly 0x1021, init 0), Redis Cluster's key hash.
//
// Eight bytes at a time ("slicing by 8"): the CRC is linear, so the
// register after 8 bytes is the XOR of each byte's contribution shifted
// through the zero bytes after it (crcTables); the register itself mixes
// into the first two. The eight lookups are independent, where the
// byte-at-a-time loop is one chain of dependent lookups (~3x slower on
// 16-byte keys, and the slot is computed on every command).
func CRC16(b []byte) uint16 {
	var crc uint16
	t := &crcTables
	for len(b) >= 8 {
		x := crc ^ uint16(b[0])<<8 ^ uint16(b[1])
		crc = t[7][x>>8] ^ t[6][byte(x)] ^ t[5][b[2]] ^ t[4][b[3]] ^
			t[3][b[4]] ^ t[2][b[5]] ^ t[1][b[6]] ^ t[0][b[7]]
		b = b[8:]
	}
	for _, c := range b {
		crc = crc<<8 ^ t[0][byte(crc>>8)^c]
	}
	return crc
}

// HashTag returns the part of key that is hashed: the bytes between the
// first '{' and the next '}' if that is non-empty, else the whole key.
func HashTag(key []byte) []byte {
	for i, c := range key {
		if c == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j == i+1 {
						return key
					}
					return key[i+1 : j]
				}
			}
			return key
		}
	}
	return key
}

// Slot returns the slot a key belongs to.
func Slot(key []byte) int { return int(CRC16(HashTag(key)) & (NumSlots - 1)) }

// SlotString is Slot for a string key, without allocating.
func SlotString(key string) int {
	start, end := 0, len(key)
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						start, end = i+1, j
					}
					break
				}
			}
			break
		}
	}
	return int(CRC16(unsafe.Slice(unsafe.StringData(key[start:end]), end-start)) & (NumSlots - 1))
}
