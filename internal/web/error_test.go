package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// records is a slog.Handler that keeps every record.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// messages returns the messages logged at level or above, except request lines.
func (h *records) messages(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level >= level && r.Message != "request" {
			out = append(out, r.Message)
		}
	}
	return out
}

// attr returns the value of key in the first record with message msg.
func (h *records) attr(msg, key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		var v string
		var found bool
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value.String(), true
				return false
			}
			return true
		})
		return v, found
	}
	return "", false
}

func TestError(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("postgres: list: %w", syscall.ECONNREFUSED)
	cases := []struct {
		name      string
		err       error
		preset    map[string]string // headers the handler set before failing
		status    int
		body      map[string]any
		header    map[string]string
		logged    []string // messages at warn or above
		notInBody string
	}{
		{name: "domain error with fields", err: domain.VersionConflict(3, 4), status: http.StatusConflict,
			body: map[string]any{"detail": "Version conflict: expected 3, current 4", "expected": 3.0, "current": 4.0}},
		{name: "internal error is logged and hidden", err: errors.New("pq: secret detail"), status: http.StatusInternalServerError,
			body: map[string]any{"detail": "Internal error."}, logged: []string{"internal error"}, notInBody: "secret"},
		{name: "outage", err: refused, status: http.StatusServiceUnavailable,
			body:   map[string]any{"detail": "Service temporarily unavailable; try again shortly"},
			header: map[string]string{"Retry-After": "5"}, logged: []string{"dependency unavailable"}, notInBody: "refused"},
		{name: "outage behind an internal domain error shows its message",
			err:    &domain.Error{Code: domain.EInternal, Message: "Could not queue the deploy task", Err: refused},
			status: http.StatusServiceUnavailable, body: map[string]any{"detail": "Could not queue the deploy task"},
			header: map[string]string{"Retry-After": "5"}, logged: []string{"dependency unavailable"}},
		{name: "unavailable code", err: domain.Errorf(domain.EUnavailable, "Server shutting down"),
			preset: map[string]string{"Retry-After": "1"}, status: http.StatusServiceUnavailable,
			body: map[string]any{"detail": "Server shutting down"}, header: map[string]string{"Retry-After": "1"}},
		{name: "unauthorized gets a bearer challenge", err: domain.ErrUnauthorized, status: http.StatusUnauthorized,
			body: map[string]any{"detail": "Could not validate credentials"}, header: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "a handler's own challenge stays", err: domain.ErrUnauthorized, preset: map[string]string{"WWW-Authenticate": "Basic"},
			status: http.StatusUnauthorized, body: map[string]any{"detail": "Could not validate credentials"},
			header: map[string]string{"WWW-Authenticate": "Basic"}},
		{name: "unencodable success", err: nil, status: http.StatusInternalServerError,
			body: map[string]any{"detail": "Internal error."}, logged: []string{"internal error"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &records{}
			r := chi.NewRouter()
			r.Use(web.Middleware(slog.New(logs))...)
			r.Method(http.MethodGet, "/topologies/{id}", web.Handler(func(w http.ResponseWriter, r *http.Request) error {
				for k, v := range tc.preset {
					w.Header().Set(k, v)
				}
				if tc.err == nil {
					return web.JSON(w, http.StatusOK, map[string]any{"f": func() {}})
				}
				return tc.err
			}))
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/topologies/t1?ticket=secret-ticket", nil))

			require.Equal(t, tc.status, rec.Code)
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "%s", rec.Body)
			require.Equal(t, tc.body, body)
			for k, v := range tc.header {
				require.Equal(t, v, rec.Header().Get(k), k)
			}
			if tc.status != http.StatusServiceUnavailable {
				require.Empty(t, rec.Header().Get("Retry-After"))
			}
			if tc.notInBody != "" {
				require.NotContains(t, rec.Body.String(), tc.notInBody)
			}
			require.Equal(t, tc.logged, logs.messages(slog.LevelWarn), "logged once, and only what must be")

			// The request line: status, route ids, and never the query.
			status, ok := logs.attr("request", "status")
			require.True(t, ok)
			require.Equal(t, fmt.Sprint(tc.status), status)
			path, _ := logs.attr("request", "path")
			require.Equal(t, "/topologies/t1", path)
			tid, _ := logs.attr("request", "topology_id")
			require.Equal(t, "t1", tid)
			id, _ := logs.attr("request", "request_id")
			require.NotEmpty(t, id)
		})
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	logs := &records{}
	r := chi.NewRouter()
	r.Use(web.Middleware(slog.New(logs))...)
	r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("secret panic value") })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"detail": "Internal error."}`, rec.Body.String())
	require.Equal(t, []string{"panic"}, logs.messages(slog.LevelError))
	status, _ := logs.attr("request", "status")
	require.Equal(t, "500", status)

	// net/http's own abort is not swallowed.
	abort := chi.NewRouter()
	abort.Use(web.Middleware(slog.New(&records{}))...)
	abort.Get("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/abort", nil))
	})
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	r := chi.NewRouter()
	r.Use(web.Middleware(discard())...)
	r.Get("/only-get", web.Healthz)
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "Not found"},
		{http.MethodPost, "/only-get", http.StatusMethodNotAllowed, "Method not allowed"},
	} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		require.Equal(t, tc.status, rec.Code)
		require.JSONEq(t, `{"detail": "`+tc.detail+`"}`, rec.Body.String())
	}
}
