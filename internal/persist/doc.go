// Package persist writes and reads snapshots of the keyspace (the
// append-only log will live here too).
//
// A snapshot is taken without stopping writes: the dumper locks one slot
// at a time, serialises that slot's live keys into memory, unlocks it and
// writes the bytes to disk outside the lock. Each slot is therefore a
// consistent image of that slot at the moment it was dumped, and different
// slots are images of different moments. Every slot section carries the
// sequence number ("mark") of the last write applied to the slot when it
// was dumped.
//
// # Recovery with the log (not built yet)
//
// Until the append-only log exists there are no sequence numbers and every
// mark is 0. Once the log assigns each write record a sequence number,
// recovery is: load the snapshot, then replay the log, applying a record
// for slot s only if its sequence number is greater than s's mark. A record
// at or below the mark is already in the snapshot's image of s (it was
// applied before the slot was dumped); a record above it is not. So no
// record is applied twice and none is skipped, although slots were dumped
// at different moments. The log may then be truncated up to the smallest
// mark of the snapshot.
//
// # File format (version 1)
//
// All fixed-width integers are little-endian. uvarint is
// encoding/binary's unsigned varint. CRCs are CRC-32C (Castagnoli).
//
//	file    = header section* trailer
//	header  = magic "SHOALSNP" (8 bytes)
//	          version   uint32   (1)
//	          created   int64    unix ms when the dump started
//	          crc       uint32   CRC of the 20 bytes above
//	section = tag       'S'      (1 byte)
//	          slot      uint16   0..16383, non-decreasing along the file
//	          mark      uint64   sequence number the slot was dumped at
//	          count     uint32   entries in the body (> 0)
//	          bodylen   uint32   bytes of body
//	          body      entry*   exactly count entries, exactly bodylen bytes
//	          crc       uint32   CRC of slot..body (everything after the tag)
//	trailer = tag       'E'      (1 byte)
//	          sections  uint32   number of sections
//	          keys      uint64   total entries of all sections
//	          crc       uint32   CRC of: the header crc, every section crc
//	                             in file order, then sections and keys
//	                             (so a dropped or reordered section is caught)
//	          then end of file: trailing bytes are corruption.
//
// A slot normally has one section; a very large slot is split into
// several consecutive sections with the same slot and mark, at entry
// boundaries. Empty slots have no section.
//
//	entry   = kind      byte     bits 0-2 type: 0 string, 1 list, 2 hash,
//	                             3 set, 4 zset; bit 7 expiry present;
//	                             bit 6 memcached flags present;
//	                             bit 5 value compressed; bits 3-4 zero
//	          keylen    uvarint, key bytes (binary safe)
//	          [expireAt int64]   absolute unix ms (bit 7)
//	          [flags    uint32]  memcached client flags (bit 6)
//	          value
//	value   = plain | compressed
//	plain   = string: uvarint len, bytes
//	          list:   uvarint n (> 0), n × (uvarint len, bytes), head to tail
//	          hash:   uvarint n (> 0), n × (field, value), each uvarint len, bytes
//	          set:    uvarint n (> 0), n × member
//	          zset:   uvarint n (> 0), n × (member, score float64 bits), ascending
//	compressed = uvarint rawlen, uvarint complen, complen bytes of an S2
//	          block (github.com/klauspost/compress/s2) that decodes to
//	          rawlen bytes: the string's bytes for a string, the plain
//	          encoding for a collection.
//
// Values whose plain encoding exceeds CompressMin bytes are compressed
// when S2 saves at least an eighth. Small keys — the common case — cost
// only their bytes plus a few header bytes, and loading them is a
// sequential parse with one CRC per section; the CRC is hardware
// accelerated. Keys already expired are not written, and on load keys
// whose expiry has passed are skipped. The memcached CAS is not stored:
// it is regenerated on load, as after any write.
//
// Collections are never empty in the engine and an empty one in a file
// is corruption, as is a duplicate key, member or field, an unknown type
// or flag bit, a NaN score, or any count or length running past the body.
package persist
