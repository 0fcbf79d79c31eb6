package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/web"
)

func TestReadyz(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp: connection refused") }
	cases := []struct {
		name   string
		checks []web.Check
		status int
		body   map[string]string
	}{
		{"all ready", []web.Check{{Name: "postgres", Probe: ok}, {Name: "redis", Probe: ok}},
			http.StatusOK, map[string]string{"postgres": "ok", "redis": "ok"}},
		{"one down", []web.Check{{Name: "postgres", Probe: ok}, {Name: "redis", Probe: down}},
			http.StatusServiceUnavailable, map[string]string{"postgres": "ok", "redis": "unreachable", "detail": "Not ready: redis"}},
		{"own label", []web.Check{{Name: "postgres", Probe: down}, {Name: "reader", Probe: down, Down: "starting"}},
			http.StatusServiceUnavailable, map[string]string{"postgres": "unreachable", "reader": "starting", "detail": "Not ready: postgres, reader"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			web.Readyz(tc.checks...).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			require.Equal(t, tc.status, rec.Code)
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			require.Equal(t, tc.body, body)
			if tc.status == http.StatusServiceUnavailable {
				require.Equal(t, "5", rec.Header().Get("Retry-After"))
			}
		})
	}
}

// TestRequestLogSurvivesHijack: an SSE stream takes its connection over from
// net/http; the request line must still be written, with status 200.
func TestRequestLogSurvivesHijack(t *testing.T) {
	t.Parallel()
	logs := &records{}
	r := chi.NewRouter()
	r.Use(web.Middleware(slog.New(logs))...)
	r.Get("/api/v1/topologies/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = nc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n: keepalive\n\n"))
		nc.Close()
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/topologies/t9/events?ticket=secret")
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, ": keepalive\n", line)
	require.Eventually(t, func() bool { _, ok := logs.attr("request", "status"); return ok }, waitBound, pollEvery)
	status, _ := logs.attr("request", "status")
	require.Equal(t, "200", status)
	tid, _ := logs.attr("request", "topology_id")
	require.Equal(t, "t9", tid)
	path, _ := logs.attr("request", "path")
	require.Equal(t, "/api/v1/topologies/t9/events", path)
}
