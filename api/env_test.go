package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
)

// testEnv is one test's API: its own schema, Redis prefix and asynq queue,
// served by httptest, with an admin and a viewer already logged in. Tokens
// and tokens_valid_from read Clock, which stands still until a test moves it.
type testEnv struct {
	t           testing.TB
	Clock       *testClock
	DB          *postgres.DB
	Redis       *dbtest.Redis
	Server      *Server
	HTTP        *httptest.Server
	Streams     *stream.Streams
	Inspector   *asynq.Inspector
	Admin       *domain.User
	AdminToken  string
	Viewer      *domain.User
	ViewerToken string
}

// testPassword is the password of the users newTestEnv creates.
const testPassword = "correct horse battery"

// testSecret signs the test tokens.
const testSecret = "test-secret-test-secret-test-secret!"

// testConfig is the process configuration of a test API: its own Redis
// prefix and asynq queue, cheap bcrypt, no logs.
func testConfig(rd *dbtest.Redis) Config {
	return Config{
		RedisPrefix: rd.Prefix, Queue: rd.Queue, JWTSecret: []byte(testSecret),
		Log: slog.New(slog.DiscardHandler), BcryptCost: bcrypt.MinCost, DBMaxConns: dbtest.MaxConns,
	}
}

// newTestEnv builds an isolated API for t, wired by NewServer as Run wires
// it.
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	db := dbtest.New(t)
	rd := dbtest.NewRedis(t)
	clock := newTestClock()
	db.Now = clock.Now
	s := NewServer(testConfig(rd), db, rd.Client)
	s.Tokens = s.Tokens.WithClock(clock.Now)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, Clock: clock, DB: db, Redis: rd, Server: s, HTTP: srv, Streams: stream.New(rd.Client, s.Keys),
		Inspector: asynq.NewInspectorFromRedisClient(rd.Client)}
	e.Admin, e.AdminToken = e.createUser("admin", domain.RoleAdmin, false)
	e.Viewer, e.ViewerToken = e.createUser("viewer", domain.RoleViewer, false)
	return e
}

// testClock is a clock that moves only when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// newTestClock starts at the current second.
func newTestClock() *testClock { return &testClock{now: time.Now().Truncate(time.Second)} }

// Now returns the clock's time.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// createUser inserts a user with testPassword and returns it with a token.
func (e *testEnv) createUser(name string, role domain.Role, mustChange bool) (*domain.User, string) {
	e.t.Helper()
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &domain.User{Username: name, PasswordHash: hash, Role: role, MustChangePassword: mustChange}
	if err := e.DB.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.Server.Tokens.Issue(u.UUID)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, tok
}

// do sends a request with an optional JSON body (a string or []byte is sent
// as is, anything else is marshalled) and bearer token; it returns the status
// and the raw response body.
func (e *testEnv) do(method, path string, body any, token string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.HTTP.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// doJSON is do that decodes the response body into out (when non-nil).
func (e *testEnv) doJSON(method, path string, body any, token string, out any) int {
	e.t.Helper()
	status, raw := e.do(method, path, body, token)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return status
}
