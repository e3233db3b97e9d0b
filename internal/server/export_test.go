package server

import "shoal/internal/cluster"

// InstallMapMoves installs m as the cluster agent does: the routing
// view, then the moves (importers started and stopped, slots dropped).
func (s *Server) InstallMapMoves(m *cluster.Map, self string) {
	s.SetClusterMap(m, self)
	s.reconcileMoves(nil, m, self)
}
