package api

import "github.com/go-chi/chi/v5"

// mutationRoutes registers the mutation endpoints.
func (s *Server) mutationRoutes(r chi.Router) {}
