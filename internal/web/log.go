package web

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Middleware returns what every mazenet router uses first, in this order:
// chi's request id, the request log (which also lends log to Error and
// Recover for the request), and the panic recoverer.
func Middleware(log *slog.Logger) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{middleware.RequestID, LogRequests(log), Recover}
}

type loggerKey struct{}

// logger is the logger LogRequests lent to the request, or slog's default
// outside that middleware (a handler under test).
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// LogRequests logs one line per request when its handler returns: request
// id, method, path, status, elapsed, and the topology_id / mutation_id of
// the route when it has them. The query string is never logged: SSE tickets
// travel there. A stream whose connection was taken over (hijacked) counts
// as a 200 and is logged when its handler hands the stream off.
func LogRequests(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &recorder{ResponseWriter: w}
			r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, log))
			defer func() {
				status := rec.status
				if status == 0 {
					status = http.StatusOK // what net/http sends for a handler that wrote nothing
				}
				attrs := []slog.Attr{
					slog.String("request_id", middleware.GetReqID(r.Context())),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", status), slog.Duration("elapsed", time.Since(start)),
				}
				if id := chi.URLParam(r, "id"); id != "" {
					attrs = append(attrs, slog.String("topology_id", id))
				}
				if id := chi.URLParam(r, "mutation_id"); id != "" {
					attrs = append(attrs, slog.String("mutation_id", id))
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// recorder remembers the status for the request log. It unwraps, so
// http.ResponseController reaches the connection for flushes, deadlines and
// the takeover of an SSE stream, and it implements Flusher and Hijacker
// itself for code that asserts them directly.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer (for http.ResponseController).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *recorder) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; a taken-over connection is logged as a
// 200, the status its handler then writes by hand.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusOK
	}
	return nc, brw, err
}

// Recover turns a handler panic into one logged line (with the stack) and a
// 500 with the standard body, so a bug never leaks a stack trace to the
// client. http.ErrAbortHandler is re-raised: it is net/http's own way to
// abort a response.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger(r.Context()).ErrorContext(r.Context(), "panic", "panic", v, "stack", string(debug.Stack()),
				"request_id", middleware.GetReqID(r.Context()), "method", r.Method, "path", r.URL.Path)
			_ = JSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal error."})
		}()
		next.ServeHTTP(w, r)
	})
}
