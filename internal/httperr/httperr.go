// Package httperr is the one table mapping domain error codes to HTTP
// statuses, shared by the api and sse processes so both answer the same
// error with the same status and the same {"detail": ...} body.
package httperr

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/decnet/mazenet/internal/domain"
)

// statusOf maps each domain code to its HTTP status.
var statusOf = map[domain.Code]int{
	domain.EInvalid:       http.StatusBadRequest,
	domain.EUnauthorized:  http.StatusUnauthorized,
	domain.EForbidden:     http.StatusForbidden,
	domain.ENotFound:      http.StatusNotFound,
	domain.EConflict:      http.StatusConflict,
	domain.ETooLarge:      http.StatusRequestEntityTooLarge,
	domain.EUnprocessable: http.StatusUnprocessableEntity,
	domain.ERateLimited:   http.StatusTooManyRequests,
	domain.EInternal:      http.StatusInternalServerError,
}

// Status returns the HTTP status for err (500 for anything that is not a
// domain error).
func Status(err error) int {
	if s, ok := statusOf[domain.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// JSON writes v as JSON with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Recoverer turns a handler panic into one logged line and a 500 with the
// standard body, so a bug never leaks a stack trace to the client.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					log.ErrorContext(r.Context(), "panic", "panic", v, "path", r.URL.Path,
						"request_id", middleware.GetReqID(r.Context()))
					JSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal error."})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
