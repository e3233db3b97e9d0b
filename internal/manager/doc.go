// Package manager is the management node: a Raft-replicated cluster map
// (hashicorp/raft, BoltDB log store, JSON snapshots of the map), the
// heartbeat endpoint that grants primaries their write leases, the failure
// detector and failover, and the HTTP JSON admin API that shoal ctl and
// shoal dev use.
package manager
