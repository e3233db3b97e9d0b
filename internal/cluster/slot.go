// Package cluster holds what every node agrees on about data placement:
// the slot function (CRC16 of the key or its {hash tag}, mod 16384, exactly
// as Redis Cluster computes it).
package cluster

// NumSlots is the number of virtual nodes the keyspace is cut into.
const NumSlots = 16384

var crcTable [256]uint16

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
		crcTable[i] = crc
	}
}

// CRC16 is CRC-16/XMODEM (poly 0x1021, init 0), Redis Cluster's key hash.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
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
	var crc uint16
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
	for i := start; i < end; i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return int(crc & (NumSlots - 1))
}
