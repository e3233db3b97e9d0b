// Package resp implements the Redis serialization protocol (RESP2 and RESP3)
// as Shoal's storage nodes and proxies speak it.
//
// Requests (client → server) are either multibulk frames or inline lines:
//
//	*<n>\r\n  then n times  $<len>\r\n<len bytes>\r\n
//	<word> <word> "quoted \x41" 'single'\r\n      (inline, as redis-cli and telnet send)
//
// Parse never allocates for multibulk frames: the returned arguments are
// sub-slices of the input buffer and are valid only until the caller reuses
// that buffer. Anything that outlives the call (a stored value, a queued
// MULTI command) must be copied.
//
// Replies are written with Writer, which appends to a byte slice so that all
// replies produced for one read batch go out in one write. Writer knows the
// protocol version negotiated by HELLO and maps RESP3-only types onto their
// RESP2 equivalents (map → flat array, set → array, double → bulk string,
// boolean → integer, null → $-1 or *-1, push → array).
package resp
