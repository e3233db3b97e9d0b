package cluster

// Protocol versions. Storage nodes send theirs to the managers in every
// heartbeat (Node.Protocol, recorded in the map) and to their primary
// before PSYNC (REPLCONF version N). A build speaks ProtocolVersion and
// still talks to peers down to MinProtocolVersion: one version of skew,
// so a node of version N+1 joins a cluster of version N during a rolling
// upgrade (docs/operations.md, "Upgrades"). A change that an older peer
// would misread (a new heartbeat meaning, a new record in the replication
// stream) bumps ProtocolVersion; MinProtocolVersion follows one release
// later, once no supported build speaks the old protocol.
//
// Protocol 0 is the builds from before versions were sent (their
// heartbeats have no protocol field and their replicas send no REPLCONF
// version): they speak what protocol 1 speaks, which only added the
// version reports. Protocol 2 added CLUSTER MOVESYNC (a slot move's
// stream carrying several slots); a target of protocol 2 asks a source of
// protocol 0 or 1 with CLUSTER SLOTSYNC, one slot a stream, and a source
// of protocol 2 serves both. Protocol 3 added CLUSTER MOVEFENCE and
// MOVEDONE (the migrator's news of a committed cutover and flip, ahead
// of the map): a migrator sends them only to nodes of protocol 3, and
// the others learn the steps from their map. Protocol 4 added CLUSTER
// MOVEWAIT (a cutover's target answers once it has applied the fenced
// slots' last changes, instead of the migrator polling it).
const (
	ProtocolVersion = 4
	// MoveBatchProtocol is the first protocol whose nodes serve CLUSTER
	// MOVESYNC and CLUSTER MIGRATION of several slots at once.
	MoveBatchProtocol = 2
	// MovePushProtocol is the first protocol whose nodes take CLUSTER
	// MOVEFENCE and MOVEDONE.
	MovePushProtocol = 3
	// MoveWaitProtocol is the first protocol whose nodes take CLUSTER
	// MOVEWAIT.
	MoveWaitProtocol   = 4
	MinProtocolVersion = 0
)
