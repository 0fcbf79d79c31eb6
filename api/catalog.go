package api

import "github.com/go-chi/chi/v5"

// catalogRoutes registers the catalog endpoints.
func (s *Server) catalogRoutes(r chi.Router) {}
