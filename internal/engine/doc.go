// Package engine is the keyspace of a storage node: 16384 slot tables, each
// a hash map of keys to typed entries guarded by its own mutex, with lazy
// and active expiry, memory accounting and maxmemory eviction.
//
// Locking contract: every method that takes a *Slot expects the caller to
// hold that slot's lock (Lock/Unlock, or LockSlots for several slots in
// ascending order). Methods on *DB that take no slot lock what they need
// themselves, one slot at a time, and must be called with no slot locked.
// Values handed to the engine are copied; keys and values returned alias
// engine memory and are valid only while the slot lock is held.
package engine
