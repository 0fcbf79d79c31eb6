package sse_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
)

// TestOutageHandshakesAre503 wires an SSE server to a PostgreSQL and/or a
// Redis that cannot be reached (closed ports; the shared servers are
// untouched): handshakes, readiness and metrics answer 503 JSON with
// Retry-After, never 500 and never 401 (authentication reads the user row
// and redeems tickets in Redis).
func TestOutageHandshakesAre503(t *testing.T) {
	t.Parallel()
	deadDB, deadRedis := dbtest.UnreachablePostgres(t), dbtest.UnreachableRedis(t)
	e := newEnv(t)
	viewer, viewerTok := e.user(domain.RoleViewer, false)
	_, adminTok := e.user(domain.RoleAdmin, false)
	tid := e.topology(domain.StatusActive)

	wirings := []struct {
		name string
		db   *postgres.DB
		rdb  redis.UniversalClient
	}{
		{"postgres and redis down", deadDB, deadRedis},
		{"postgres down", deadDB, e.Redis.Client},
		{"redis down", e.DB, deadRedis},
	}
	for _, wr := range wirings {
		t.Run(wr.name, func(t *testing.T) {
			// The shared reader is not started: it could never start anyway
			// with Redis down, and readiness must say so.
			s := &sse.Server{DB: wr.db, Redis: wr.rdb, Keys: e.Keys, Streams: stream.New(wr.rdb, e.Keys),
				Tokens: e.Tokens, Tickets: auth.NewTickets(wr.rdb, e.Keys), Log: slog.New(slog.DiscardHandler)}
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			calls := []struct {
				name, path string
				header     http.Header
			}{
				{"topology stream, bearer", eventsPath(tid, nil), bearerHeader(viewerTok)},
				{"topology stream, ticket", eventsPath(tid, url.Values{"ticket": {e.ticket(viewer)}}), nil},
				{"overview stream, bearer", "/api/v1/stream", bearerHeader(viewerTok)},
				{"metrics", "/metrics", bearerHeader(adminTok)},
				{"readyz", "/readyz", nil},
			}
			for _, c := range calls {
				if wr.db == e.DB && (c.name == "metrics" || c.name == "overview stream, bearer") {
					// Metrics need only PostgreSQL; a bearer handshake waits
					// for the reader (5 s) as the topology stream just did.
					continue
				}
				req, err := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
				require.NoError(t, err)
				for k, v := range c.header {
					req.Header[k] = v
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s: %s", c.name, raw)
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"), c.name)
				var body map[string]any
				require.NoError(t, json.Unmarshal(raw, &body), "%s: %s", c.name, raw)
				require.NotEmpty(t, body["detail"], c.name)
				retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				require.NoError(t, err, "%s: Retry-After %q", c.name, resp.Header.Get("Retry-After"))
				require.Positive(t, retry, c.name)
			}
		})
	}
}
