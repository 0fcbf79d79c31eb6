package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/decnet/mazenet/internal/domain"
)

// retryAfter is the Retry-After of a 503 whose handler set none: long enough
// for a restarting PostgreSQL or Redis, short enough not to matter.
const retryAfter = "5"

// Status returns the HTTP status of err: the one table from domain codes to
// statuses. An internal error (any error that is not a domain error, or a
// domain error with code EInternal) caused by a dependency outage is a 503
// (see Unavailable); any other internal error is a 500.
func Status(err error) int {
	code := domain.ErrorCode(err)
	if code == domain.EInternal && Unavailable(err) {
		return http.StatusServiceUnavailable
	}
	switch code {
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
	case domain.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error writes err as {"detail": ...} with its status and returns the status.
// The detail is the operator-safe message of a domain error, whose extra
// fields (for example "expected"/"current" of a version conflict) join the
// body; anything else is shown as a generic message. Internal errors and
// dependency outages are logged here, once, with the request id. A 503
// carries Retry-After (unless the handler set its own), a 401 a Bearer
// challenge (unless the handler set its own: HTTP Basic on /monitoring).
func Error(w http.ResponseWriter, r *http.Request, err error) int {
	ctx := r.Context()
	status := Status(err)
	body := map[string]any{"detail": domain.ErrorMessage(err)}
	var de *domain.Error
	if errors.As(err, &de) {
		for k, v := range de.Fields {
			body[k] = v
		}
	} else if status == http.StatusServiceUnavailable {
		body["detail"] = "Service temporarily unavailable; try again shortly"
	}
	switch status {
	case http.StatusInternalServerError:
		logger(ctx).ErrorContext(ctx, "internal error", "err", err,
			"request_id", middleware.GetReqID(ctx), "method", r.Method, "path", r.URL.Path)
	case http.StatusServiceUnavailable:
		// A client that left is no outage worth a line; a draining or
		// starting process (EUnavailable) says so in its own logs.
		if ctx.Err() != context.Canceled && domain.ErrorCode(err) != domain.EUnavailable {
			logger(ctx).WarnContext(ctx, "dependency unavailable", "err", err,
				"request_id", middleware.GetReqID(ctx), "method", r.Method, "path", r.URL.Path)
		}
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", retryAfter)
		}
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
