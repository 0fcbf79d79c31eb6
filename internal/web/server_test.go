package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/web"
)

// TestDeadline: a handler stuck on a hung dependency gets its context's
// error back when the request deadline passes, and the client a 503.
func TestDeadline(t *testing.T) {
	t.Parallel()
	r := chi.NewRouter()
	r.Use(web.Middleware(discard())...)
	r.Use(web.Deadline(time.Millisecond))
	r.Method(http.MethodGet, "/hang", web.Handler(func(w http.ResponseWriter, r *http.Request) error {
		<-r.Context().Done() // a driver waiting on a server that never answers
		return r.Context().Err()
	}))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hang", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.JSONEq(t, `{"detail": "Service temporarily unavailable; try again shortly"}`, rec.Body.String())
}

func TestNewServerTimeouts(t *testing.T) {
	t.Parallel()
	h := http.NotFoundHandler()
	for _, tc := range []struct {
		name string
		t    web.Timeouts
	}{{"api", web.APITimeouts()}, {"stream", web.StreamTimeouts()}} {
		srv := web.NewServer(":0", h, tc.t, discard())
		require.Equal(t, ":0", srv.Addr)
		require.Positive(t, srv.ReadHeaderTimeout, tc.name)
		require.Positive(t, srv.ReadTimeout, tc.name)
		require.Positive(t, srv.IdleTimeout, tc.name)
		require.NotNil(t, srv.ErrorLog, tc.name)
	}
	api := web.APITimeouts()
	require.Greater(t, api.Write, web.RequestTimeout, "the 503 of a request that hit its deadline can still be written")
	require.GreaterOrEqual(t, api.Read, web.RequestTimeout)
	require.Zero(t, web.StreamTimeouts().Write, "streams have per-write deadlines instead")
}
