// Package httperr is the one table mapping domain error codes to HTTP
// statuses, shared by the api and sse processes so both answer the same
// error with the same status and the same {"detail": ...} body.
package httperr

import (
	"net/http"

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
