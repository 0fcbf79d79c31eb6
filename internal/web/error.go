package web

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/decnet/mazenet/internal/domain"
)

// Status returns the HTTP status of err: the one table from domain codes to
// statuses. Anything that is not a domain error is a 500.
func Status(err error) int {
	switch domain.ErrorCode(err) {
	case domain.EInvalid:
		return http.StatusBadRequest
	case domain.EUnauthorized:
		return http.StatusUnauthorized
	case domain.EForbidden:
		return http.StatusForbidden
	case domain.ENotFound:
		return http.StatusNotFound
	case domain.EConflict:
		return http.StatusConflict
	case domain.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case domain.EUnprocessable:
		return http.StatusUnprocessableEntity
	case domain.ERateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// Error writes err as {"detail": ...} with its status and returns the status.
// The detail is the operator-safe message of a domain error, whose extra
// fields (for example "expected"/"current" of a version conflict) join the
// body; anything else is logged here, once, with the request id, and shown
// as a generic message. A 401 carries a Bearer challenge unless the handler
// set its own (HTTP Basic on /monitoring).
func Error(w http.ResponseWriter, r *http.Request, err error) int {
	status := Status(err)
	body := map[string]any{"detail": domain.ErrorMessage(err)}
	var de *domain.Error
	if errors.As(err, &de) {
		for k, v := range de.Fields {
			body[k] = v
		}
	}
	switch status {
	case http.StatusInternalServerError:
		logger(r.Context()).ErrorContext(r.Context(), "internal error", "err", err,
			"request_id", middleware.GetReqID(r.Context()), "method", r.Method, "path", r.URL.Path)
	case http.StatusUnauthorized:
		if w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
	}
	if JSON(w, status, body) != nil {
		_ = JSON(w, status, map[string]string{"detail": domain.ErrorMessage(err)})
	}
	return status
}

// NotFound answers an unrouted path with the JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Error(w, r, domain.Errorf(domain.ENotFound, "Not found"))
}

// MethodNotAllowed answers a routed path called with the wrong method. It
// is the one status the domain vocabulary has no code for: only the router
// can tell.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	_ = JSON(w, http.StatusMethodNotAllowed, map[string]string{"detail": "Method not allowed"})
}
