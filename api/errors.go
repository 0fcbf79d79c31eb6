package api

import (
	"net/http"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/httperr"
)

// Error writes err as {"detail": ...} with its status. Internal errors are
// logged once here, with the request id, and shown as a generic message.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	status := httperr.Status(err)
	if status == http.StatusInternalServerError {
		s.Log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path)
	}
	body := map[string]any{"detail": domain.ErrorMessage(err)}
	var de *domain.Error
	if asDomain(err, &de) {
		for k, v := range de.Fields {
			body[k] = v
		}
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	httperr.JSON(w, status, body)
}
