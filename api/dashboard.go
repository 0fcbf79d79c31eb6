package api

import "github.com/go-chi/chi/v5"

// dashboardRoutes registers the dashboard endpoints.
func (s *Server) dashboardRoutes(r chi.Router) {}
