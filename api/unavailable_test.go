package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// TestDependencyOutageIs503 wires the api to a PostgreSQL and/or a Redis
// that cannot be reached (closed ports; the shared servers are untouched):
// every route that needs the missing dependency answers 503 JSON with
// Retry-After, the others keep working, and nothing is ever a 500 — auth
// included (the token check reads the user row, login counts attempts in
// Redis).
func TestDependencyOutageIs503(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	tid := e.liveTopology(domain.StatusActive)
	deadDB, deadRedis := dbtest.UnreachablePostgres(t), dbtest.UnreachableRedis(t)

	const unavailable = http.StatusServiceUnavailable
	calls := []struct {
		name, method, path string
		body               any
		token              string
	}{
		{"login", "POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": testPassword}, ""},
		{"list topologies", "GET", "/api/v1/topologies", nil, e.ViewerToken},
		{"enqueue", "POST", mutationsPath(tid), map[string]any{"op": "add_lan", "payload": map[string]any{"name": "lan-x"}}, e.AdminToken},
		{"sse ticket", "POST", "/api/v1/auth/sse-ticket", nil, e.ViewerToken},
		{"metrics", "GET", "/metrics", nil, e.AdminToken},
		{"readyz", "GET", "/readyz", nil, ""},
	}
	wirings := []struct {
		name string
		db   *postgres.DB
		rdb  redis.UniversalClient
		want []int // per call
	}{
		{"postgres and redis down", deadDB, deadRedis, []int{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable}},
		{"postgres down", deadDB, e.Redis.Client, []int{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable}},
		// The enqueue is durable in PostgreSQL; its event and wake-up are
		// repaired by the sweep once Redis is back.
		{"redis down", e.DB, deadRedis, []int{unavailable, http.StatusOK, http.StatusAccepted, unavailable, http.StatusOK, unavailable}},
	}
	for _, wr := range wirings {
		t.Run(wr.name, func(t *testing.T) {
			s := NewServer(testConfig(e.Redis), wr.db, wr.rdb) // wired as Run wires it
			s.Tokens = e.Server.Tokens
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			for i, c := range calls {
				status, hdr, raw := authCall(t, srv.URL, c.method, c.path, c.body, c.token, nil)
				require.Equal(t, wr.want[i], status, "%s: %s", c.name, raw)
				if status != unavailable {
					continue
				}
				require.Equal(t, "application/json", hdr.Get("Content-Type"), c.name)
				var body map[string]any
				require.NoError(t, json.Unmarshal(raw, &body), "%s: %s", c.name, raw)
				require.NotEmpty(t, body["detail"], c.name)
				retry, err := strconv.Atoi(hdr.Get("Retry-After"))
				require.NoError(t, err, "%s: Retry-After %q", c.name, hdr.Get("Retry-After"))
				require.Positive(t, retry, c.name)
				require.NotContains(t, string(raw), "refused", "%s: no driver detail leaks", c.name)
			}
		})
	}
}
