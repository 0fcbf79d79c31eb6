package api

import "github.com/go-chi/chi/v5"

// userRoutes registers the user endpoints.
func (s *Server) userRoutes(r chi.Router) {}
