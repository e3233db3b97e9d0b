// Package memcache is the codec of the memcached text and meta protocols
// (memcached 1.6): a request parser that fills a reusable Command whose
// byte slices alias the input buffer, and reply appenders. It knows the
// wire format only; what a command does to the keyspace lives in
// internal/server (memcache_cmds.go).
//
// # Framing
//
// A request is one command line ended by "\r\n" (a bare "\n" is accepted,
// as memcached does), tokens separated by one or more spaces. Storage
// commands are followed by a data block of exactly <bytes> bytes and
// "\r\n". A line longer than Limits.MaxLine (Limits.MaxGetLine for the
// retrieval commands get/gets/gat/gats, whose key lists may be long) is a
// framing error: "CLIENT_ERROR line too long", then the connection is
// closed.
//
// # Text protocol
//
//	set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]\r\n<data>\r\n
//	cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]\r\n<data>\r\n
//	get|gets <key>+\r\n
//	gat|gats <exptime> <key>+\r\n
//	touch <key> <exptime> [noreply]\r\n
//	delete <key> [0] [noreply]\r\n
//	incr|decr <key> <delta> [noreply]\r\n
//	flush_all [delay] [noreply]\r\n
//	version | verbosity <n> [noreply] | quit | stats [group]\r\n
//
// flags is a 32-bit unsigned integer, exptime a signed integer (relative
// seconds, or an absolute unix time when above 30 days, negative = already
// expired), bytes a non-negative 32-bit integer, delta and cas unique
// 64-bit unsigned integers. A key is 1 to 250 bytes, none of them a space
// or a control character.
//
// Replies: STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED, TOUCHED, OK,
// "VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n" ... "END", a decimal
// number (incr/decr), "VERSION <v>", "STAT <name> <value>" ... "END".
// Errors: "ERROR" (unknown command or wrong token count),
// "CLIENT_ERROR <msg>" (bad request; the connection stays usable unless
// said otherwise), "SERVER_ERROR <msg>".
//
// Data blocks: a block not ended by "\r\n" is consumed as announced and
// answered "CLIENT_ERROR bad data chunk". A block larger than
// Limits.MaxItemSize is answered "SERVER_ERROR object too large for cache"
// and its announced bytes are skipped (Command.Swallow) without being
// buffered, as memcached does.
//
// # Meta protocol
//
//	mg <key> <flag>*\r\n                     -> VA <len> <flag>*\r\n<data>\r\n | HD <flag>* | EN
//	ms <key> <datalen> <flag>*\r\n<data>\r\n -> HD | NS | EX | NF
//	md <key> <flag>*\r\n                     -> HD | NF | EX
//	ma <key> <flag>*\r\n                     -> HD | VA | NF | NS | EX
//	mn\r\n                                   -> MN
//	me <key>\r\n                             -> ME <key> <k>=<v>* | EN
//
// A flag is one letter, optionally followed by a token without spaces
// (T30, Oabc). Flags accepted per command:
//
//	mg: b c f h k l O q s t u v E N R T
//	ms: b c C E F I k O q s S T M N
//	md: b C E I k O q T x
//	ma: b C E N J D T M q O t c v k
//
// b means the key is base64 (decoded up to 250 bytes; k returns it
// encoded, followed by a b flag). Return flags follow the order of the
// request; mg then adds Z (a win token was already handed out), X (the
// item is stale) and W (this client won the right to recache). Errors:
// "CLIENT_ERROR invalid flag", "CLIENT_ERROR duplicate flag",
// "CLIENT_ERROR bad token in command line format",
// "CLIENT_ERROR error decoding key", "CLIENT_ERROR invalid mode for ms M
// token" (ma alike).
package memcache
