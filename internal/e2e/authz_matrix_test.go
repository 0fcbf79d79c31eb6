package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/sse"
)

// Credential kinds of the authorization matrix (issue 8): the columns.
const (
	credNone        = "no token"
	credMalformed   = "malformed"
	credExpired     = "expired"
	credRevoked     = "revoked (logout)"
	credDeleted     = "user deleted"
	credViewer      = "viewer"
	credMustChange  = "admin, password change pending"
	credAdmin       = "admin"
	credTicketBear  = "SSE ticket as bearer"
	credJWTInQuery  = "JWT in query string"
	credTicketQuery = "SSE ticket in query"
)

var matrixColumns = []string{credNone, credMalformed, credExpired, credRevoked, credDeleted, credViewer,
	credMustChange, credAdmin, credTicketBear, credJWTInQuery, credTicketQuery}

// access is who a route admits; with ok, the status an admitted caller gets
// for the matrix's canned request (ids that do not exist, `{}` bodies), the
// whole row of expected statuses follows.
type access int

const (
	// public: no credential is looked at; every column gets ok.
	public access = iota
	// basicAuth: HTTP Basic only (/monitoring); no bearer or ticket opens it.
	basicAuth
	// self: any valid token, even with a password change pending (logout,
	// change-password, me: DOMAIN §11.1).
	self
	// viewer: any user without a pending password change.
	viewer
	// admin: admins without a pending password change; viewers 403.
	admin
	// sseEndpoint: an SSE endpoint: viewer-level with a header JWT, or a ticket
	// in ?ticket= (DOMAIN §11.4).
	sseEndpoint
)

type routeRule struct {
	access access
	ok     int    // status for an admitted caller
	path   string // concrete path to request ("" = the pattern with fresh uuids)
}

// expected is the row of statuses for r.
func (r routeRule) expected() map[string]int {
	row := map[string]int{}
	for _, c := range matrixColumns {
		switch r.access {
		case public:
			row[c] = r.ok
		case basicAuth:
			row[c] = http.StatusUnauthorized
		default:
			row[c] = http.StatusUnauthorized
		}
	}
	switch r.access {
	case self:
		row[credViewer], row[credMustChange], row[credAdmin] = r.ok, r.ok, r.ok
	case viewer, sseEndpoint:
		row[credViewer], row[credMustChange], row[credAdmin] = r.ok, http.StatusForbidden, r.ok
		if r.access == sseEndpoint {
			row[credTicketQuery] = r.ok
		}
	case admin:
		row[credViewer], row[credMustChange], row[credAdmin] = http.StatusForbidden, http.StatusForbidden, r.ok
	}
	return row
}

// apiRoutes is every route of the api router. A route missing here fails
// TestAuthorizationMatrix: decide who may call it, then add it.
var apiRoutes = map[string]routeRule{
	// Public: health, login, the API description and the dashboard's files.
	"GET /healthz":             {public, 200, ""},
	"GET /readyz":              {public, 200, ""},
	"POST /api/v1/auth/login":  {public, 422, ""}, // `{}`: username and password are required
	"GET /api/v1/openapi.json": {public, 200, ""},
	"GET /":                    {public, 200, ""},
	"GET /ui":                  {public, 200, ""},
	"GET /ui/*":                {public, 200, "/ui/topologies"},
	"GET /assets/*":            {public, 200, "/assets/js/main.js"},

	// The asynq UI: HTTP Basic with an admin's password, never a bearer.
	"ANY /monitoring":   {basicAuth, 0, ""},
	"ANY /monitoring/*": {basicAuth, 0, "/monitoring/api/queues"},

	// Ops: admins (or the metrics token) only.
	"GET /metrics": {admin, 200, ""},
	"ANY /debug/*": {admin, 200, "/debug/pprof/"},

	// Auth.
	"POST /api/v1/auth/logout":          {self, 200, ""},
	"POST /api/v1/auth/change-password": {self, 422, ""}, // `{}`: the new password is too short
	"GET /api/v1/auth/me":               {self, 200, ""},
	"POST /api/v1/auth/sse-ticket":      {viewer, 200, ""},

	// Users: admins only.
	"GET /api/v1/config/users":                       {admin, 200, ""},
	"POST /api/v1/config/users":                      {admin, 422, ""},
	"DELETE /api/v1/config/users/{uuid}":             {admin, 404, ""},
	"PUT /api/v1/config/users/{uuid}/role":           {admin, 422, ""},
	"PUT /api/v1/config/users/{uuid}/reset-password": {admin, 422, ""},

	// Reads: viewers. Ids are fresh uuids, so an admitted read is a 404.
	"GET /api/v1/topologies":                              {viewer, 200, ""},
	"GET /api/v1/topologies/{id}":                         {viewer, 404, ""},
	"GET /api/v1/topologies/{id}/status-events":           {viewer, 404, ""},
	"GET /api/v1/topologies/{id}/mutations":               {viewer, 404, ""},
	"GET /api/v1/topologies/{id}/mutations/{mutation_id}": {viewer, 404, ""},
	"GET /api/v1/topologies/services":                     {viewer, 200, ""},
	"GET /api/v1/topologies/services/{name}/schema":       {viewer, 404, ""},
	"GET /api/v1/topologies/archetypes":                   {viewer, 200, ""},
	"GET /api/v1/topologies/next-subnet":                  {viewer, 200, ""},
	"GET /api/v1/topologies/{id}/lans/{lan_id}/next-ip":   {viewer, 404, ""},

	// Writes: admins. An admitted `{}` body is refused by validation (422)
	// or, for a mutation, by the missing version precondition (400), before
	// the topology is looked up.
	"POST /api/v1/topologies/blank":                  {admin, 422, ""},
	"DELETE /api/v1/topologies/{id}":                 {admin, 404, ""},
	"POST /api/v1/topologies/{id}/deploy":            {admin, 404, ""},
	"POST /api/v1/topologies/{id}/teardown":          {admin, 404, ""},
	"POST /api/v1/topologies/{id}/heal":              {admin, 404, ""},
	"POST /api/v1/topologies/{id}/mutations":         {admin, 400, ""},
	"POST /api/v1/topologies/{id}/lans":              {admin, 422, ""},
	"PATCH /api/v1/topologies/{id}/lans/{lan_id}":    {admin, 404, ""},
	"DELETE /api/v1/topologies/{id}/lans/{lan_id}":   {admin, 404, ""},
	"POST /api/v1/topologies/{id}/deckies":           {admin, 422, ""},
	"PATCH /api/v1/topologies/{id}/deckies/{uuid}":   {admin, 404, ""},
	"DELETE /api/v1/topologies/{id}/deckies/{uuid}":  {admin, 404, ""},
	"POST /api/v1/topologies/{id}/edges":             {admin, 422, ""},
	"DELETE /api/v1/topologies/{id}/edges/{edge_id}": {admin, 404, ""},
}

// sseRoutes is every route of the sse router.
var sseRoutes = map[string]routeRule{
	"GET /healthz":                       {public, 200, ""},
	"GET /readyz":                        {public, 200, ""},
	"GET /metrics":                       {admin, 200, ""},
	"ANY /debug/*":                       {admin, 200, "/debug/pprof/"},
	"GET /api/v1/topologies/{id}/events": {sseEndpoint, 404, ""}, // the topology does not exist
	"GET /api/v1/stream":                 {sseEndpoint, 200, ""},
}

// walk lists "METHOD pattern" of every route of h (a chi router), mounted
// sub-routers included, so a route added later cannot escape the matrix. A
// pattern served for every method (Handle, Mount) is listed once as "ANY".
func walk(t *testing.T, h http.Handler) []string {
	t.Helper()
	routes, ok := h.(chi.Routes)
	require.True(t, ok, "the handler is a chi router")
	methods := map[string]map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(route, "/*/", "/")
		if methods[route] == nil {
			methods[route] = map[string]bool{}
		}
		methods[route][method] = true
		return nil
	})
	require.NoError(t, err)
	var out []string
	for route, ms := range methods {
		if ms[http.MethodGet] && ms[http.MethodPost] && ms[http.MethodPut] && ms[http.MethodDelete] && ms[http.MethodPatch] {
			out = append(out, "ANY "+route)
			continue
		}
		for m := range ms {
			out = append(out, m+" "+route)
		}
	}
	sort.Strings(out)
	return out
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestAuthorizationMatrix: every route of the api and of the sse process
// (enumerated with chi.Walk) × every credential kind → the expected status.
// Each cell gets fresh credentials, so a logout cell cannot spoil another.
func TestAuthorizationMatrix(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	rdb := redis.NewClient(b.Redis.Options())
	t.Cleanup(func() { _ = rdb.Close() })

	apiSrv := api.NewServer(b.apiConfig(), b.DB, rdb)
	apiH := apiSrv.Handler()
	apiTS := httptest.NewServer(apiH)
	t.Cleanup(apiTS.Close)

	sseSrv := sse.NewServer(b.sseConfig(), b.DB, rdb)
	sseH := sseSrv.Handler()
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = sseSrv.Run(runCtx) }()
	sseTS := httptest.NewServer(sseH)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = sseSrv.Shutdown(sctx)
		sseTS.CloseClientConnections()
		sseTS.Close()
		stop()
		<-runDone
	})
	waitReady(t, sseTS.URL)

	_, _ = b.createUser(t, "matrix-admin", domain.RoleAdmin, false)
	tickets := auth.NewTickets(rdb, b.Keys)
	n := 0
	// creds returns the request decoration for one column: a header and
	// query values, made fresh for this cell.
	creds := func(col string) (string, url.Values) {
		n++
		mk := func(role domain.Role, mustChange bool) (*domain.User, string) {
			return b.createUser(t, fmt.Sprintf("m%d", n), role, mustChange)
		}
		switch col {
		case credNone:
			return "", nil
		case credMalformed:
			return "Bearer not.a-jwt", nil
		case credExpired:
			u, _ := mk(domain.RoleAdmin, false)
			tok, _, err := b.Tokens.WithClock(func() time.Time { return time.Now().Add(-5 * time.Hour) }).Issue(u.UUID)
			require.NoError(t, err)
			return "Bearer " + tok, nil
		case credRevoked:
			u, tok := mk(domain.RoleAdmin, false)
			c, err := b.Tokens.Verify(tok)
			require.NoError(t, err)
			require.NoError(t, b.DB.RevokeToken(ctx, c.JTI, u.UUID, c.ExpiresAt))
			return "Bearer " + tok, nil
		case credDeleted:
			u, tok := mk(domain.RoleAdmin, false)
			require.NoError(t, b.DB.DeleteUser(ctx, u.UUID))
			return "Bearer " + tok, nil
		case credViewer:
			_, tok := mk(domain.RoleViewer, false)
			return "Bearer " + tok, nil
		case credMustChange:
			_, tok := mk(domain.RoleAdmin, true)
			return "Bearer " + tok, nil
		case credAdmin:
			_, tok := mk(domain.RoleAdmin, false)
			return "Bearer " + tok, nil
		case credTicketBear:
			u, _ := mk(domain.RoleAdmin, false)
			tk, err := tickets.Mint(ctx, u.UUID, u.Role)
			require.NoError(t, err)
			return "Bearer " + tk, nil
		case credJWTInQuery:
			_, tok := mk(domain.RoleAdmin, false)
			return "", url.Values{"token": {tok}, "access_token": {tok}, "jwt": {tok}}
		case credTicketQuery:
			u, _ := mk(domain.RoleAdmin, false)
			tk, err := tickets.Mint(ctx, u.UUID, u.Role)
			require.NoError(t, err)
			return "", url.Values{"ticket": {tk}}
		}
		t.Fatalf("unknown column %q", col)
		return "", nil
	}

	client := &http.Client{Timeout: 20 * time.Second}
	check := func(t *testing.T, base string, h http.Handler, rules map[string]routeRule) {
		routes := walk(t, h)
		for _, rt := range routes {
			if _, ok := rules[rt]; !ok {
				t.Errorf("route %q is not in the authorization matrix: add it with who may call it", rt)
			}
		}
		for key := range rules {
			require.Contains(t, routes, key, "the matrix lists a route the router no longer has")
		}
		for _, rt := range routes {
			rule, ok := rules[rt]
			if !ok {
				continue
			}
			method, pattern, _ := strings.Cut(rt, " ")
			if method == "ANY" {
				method = http.MethodGet
			}
			path := rule.path
			if path == "" {
				path = pathParam.ReplaceAllStringFunc(pattern, func(string) string { return uuid.NewString() })
			}
			want := rule.expected()
			for _, col := range matrixColumns {
				header, q := creds(col)
				u := base + path
				if len(q) > 0 {
					u += "?" + q.Encode()
				}
				var body io.Reader
				if method == http.MethodPost || method == http.MethodPut {
					body = strings.NewReader("{}")
				}
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				req, err := http.NewRequestWithContext(rctx, method, u, body)
				require.NoError(t, err)
				if header != "" {
					req.Header.Set("Authorization", header)
				}
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := client.Do(req)
				require.NoError(t, err, "%s [%s]", rt, col)
				cancel() // an opened stream is abandoned here; its body is not read
				resp.Body.Close()
				if resp.StatusCode != want[col] {
					t.Errorf("%s [%s]: status %d, want %d", rt, col, resp.StatusCode, want[col])
				}
			}
		}
	}
	t.Run("api", func(t *testing.T) { check(t, apiTS.URL, apiH, apiRoutes) })
	t.Run("sse", func(t *testing.T) { check(t, sseTS.URL, sseH, sseRoutes) })
}
