package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// RequestTimeout is the default deadline of an api request's context. A
// handler waiting on a hung dependency gets the context's error back from
// its driver and answers 503 (see Unavailable) instead of hanging; the
// client can retry at once elsewhere.
const RequestTimeout = 10 * time.Second

// Timeouts are the limits of one HTTP listener. A zero field means no limit.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers (slow-header clients).
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included, from its first
	// byte; net/http also cancels the request's context when it passes. On
	// the sse process it bounds the handshake: a stream clears the deadline
	// when it takes its connection over.
	Read time.Duration
	// Write bounds a response from the end of its request's headers. Zero
	// for streams, whose every write has its own deadline instead.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests; above the 90 s
	// a Heroku router may keep one idle, so the dyno never closes a
	// connection the router is about to reuse.
	Idle time.Duration
}

// APITimeouts are the api's limits. A request body is at most 1 MiB, which
// Read allows even on a slow link (about 70 KiB/s); every handler's context
// ends after RequestTimeout, and Write leaves room after it to send the 503.
func APITimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 20 * time.Second, Idle: 120 * time.Second}
}

// StreamTimeouts are the sse process's limits: headers and the handshake
// are bounded like the api's requests (a handshake waits at most 5 s for the
// shared reader, and its context ends with Read), the stream itself is not.
func StreamTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Idle: 120 * time.Second}
}

// NewServer returns the http.Server both processes listen with: h on addr
// with timeouts t, and net/http's own complaints (bad TLS handshakes, panics
// it recovered) logged through log at warn.
func NewServer(addr string, h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Deadline ends every request's context after d (RequestTimeout when d is
// zero or less). Use it on routers whose handlers only answer (the api);
// never on a stream.
func Deadline(d time.Duration) func(http.Handler) http.Handler {
	if d <= 0 {
		d = RequestTimeout
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
