package api

import "github.com/go-chi/chi/v5"

// topologyRoutes registers the topology endpoints.
func (s *Server) topologyRoutes(r chi.Router) {}
