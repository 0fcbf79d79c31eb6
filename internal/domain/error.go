// Package domain holds mazenet's model: topologies, LANs, deckies, edges,
// mutations and users, the status machine, the eight mutation ops, the
// allocators and validation. It is pure Go and imports nothing of ours, so
// the API, the worker and the SSE process can all share it.
package domain

import (
	"errors"
	"fmt"
)

// Code is the small error vocabulary every layer speaks. The HTTP edge maps
// each code to exactly one status (internal/web); nothing else picks statuses.
type Code string

// The error codes. Internal errors are logged once and never shown verbatim.
const (
	EInvalid       Code = "invalid"       // 400: malformed request
	EUnauthorized  Code = "unauthorized"  // 401
	EForbidden     Code = "forbidden"     // 403
	ENotFound      Code = "not_found"     // 404
	EConflict      Code = "conflict"      // 409
	ETooLarge      Code = "too_large"     // 413
	EUnprocessable Code = "unprocessable" // 422: well-formed but semantically wrong
	ERateLimited   Code = "rate_limited"  // 429
	EInternal      Code = "internal"      // 500
	// EUnavailable is a dependency that cannot serve right now, or a process
	// that is starting or draining: the client should retry (503 with
	// Retry-After). Errors of the PostgreSQL and Redis drivers are not turned
	// into it by hand: the HTTP edge recognises them (web.Unavailable).
	EUnavailable Code = "unavailable" // 503
)

// Error is a domain error: a code plus a message that is safe to show to the
// operator. Fields carries optional extra JSON keys for the error body (for
// example "expected"/"current" on a version conflict). Err is the optional
// cause: it is never shown, but it is logged and it stays visible to
// errors.Is and errors.As, so an internal error caused by a dependency outage
// is still recognised as one.
type Error struct {
	Code    Code
	Message string
	Fields  map[string]any
	Err     error
}

// Error implements the error interface: the message, then the cause if any
// (for logs; clients see only ErrorMessage).
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the operator-safe message of err: the message of an
// *Error, or a generic text for anything else, so internal details never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Common errors shared by several layers.
var (
	ErrTopologyNotFound = Errorf(ENotFound, "Topology not found")
	ErrForbidden        = Errorf(EForbidden, "Insufficient permissions")
	ErrPasswordChange   = Errorf(EForbidden, "Password change required before accessing this resource")
	ErrUnauthorized     = Errorf(EUnauthorized, "Could not validate credentials")
)

// VersionConflict is the optimistic-concurrency error of DOMAIN §5.
func VersionConflict(expected, current int) *Error {
	return &Error{
		Code:    EConflict,
		Message: fmt.Sprintf("Version conflict: expected %d, current %d", expected, current),
		Fields:  map[string]any{"expected": expected, "current": current},
	}
}
