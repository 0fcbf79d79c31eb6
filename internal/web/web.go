// Package web is the HTTP edge shared by the api and sse processes: how a
// response is written (JSON), how every failure leaves (Error, the one table
// from domain codes to statuses), the middleware every router starts with
// (request id, request log, panic recovery), health and readiness, and the
// listener's timeouts. A behaviour of the edge is defined here once, so the
// two processes cannot drift apart.
package web

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Handler is an HTTP handler that returns its failure instead of writing it
// (chi's documented pattern for error-returning handlers). Every `return err`
// leaves through Error, so no handler can pick a status of its own, forget
// to log an internal error, or answer twice.
type Handler func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		Error(w, r, err)
	}
}

// JSON writes v as JSON with status. The body is encoded before anything is
// written, so a value that cannot be encoded returns an error (for Error to
// answer 500) instead of leaving a half-written response.
func JSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("web: encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // a failed write means the client left
	return nil
}
