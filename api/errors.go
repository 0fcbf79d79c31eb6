package api

import (
	"net/http"

	"github.com/decnet/mazenet/internal/web"
)

// Error writes err through the edge's one error writer (web.Error).
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	web.Error(w, r, err)
}
