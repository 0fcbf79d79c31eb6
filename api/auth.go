package api

import "github.com/go-chi/chi/v5"

// authRoutes registers the auth endpoints.
func (s *Server) authRoutes(r chi.Router) {}
