package e2e

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/sse"
	"github.com/decnet/mazenet/worker"
)

// testPassword is the password of every user the end-to-end tests create.
const testPassword = "correct horse battery"

// testSecret is the JWT secret every process of a test shares.
const testSecret = "e2e-secret-e2e-secret-e2e-secret-e2e!"

// backend is one test's slice of the servers — its own schema, Redis prefix
// and asynq queue — and the configurations its processes run with. The
// processes are the real ones: api.Run, worker.Run and sse.Run, started by
// startAPI, startWorker and startSSE on 127.0.0.1:0. DB, Streams and Tokens
// are the test's own clients, for seeding and reading back.
// DASHBOARD_E2E_LOG=1 shows the processes' logs.
type backend struct {
	DSN     string
	DB      *postgres.DB
	Redis   *dbtest.Redis
	Keys    rediskey.Keys
	Streams *stream.Streams
	Tokens  *auth.Tokens
	Log     *slog.Logger
}

// newBackend makes a fresh schema and Redis slice.
func newBackend(t *testing.T) *backend {
	t.Helper()
	return newBackendAt(t, dbtest.URL(t), dbtest.NewRedis(t))
}

// newBackendAt is a backend on an existing (migrated) schema and Redis slice,
// for a test that prepares them itself (the seeded demo).
func newBackendAt(t *testing.T, dsn string, rd *dbtest.Redis) *backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.OpenPool(ctx, dsn, dbtest.MaxConns)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("DASHBOARD_E2E_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	keys := rediskey.New(rd.Prefix)
	return &backend{
		DSN: dsn, DB: db, Redis: rd, Keys: keys, Streams: stream.New(rd.Client, keys),
		Tokens: auth.NewTokens([]byte(testSecret), 0), Log: log,
	}
}

// processConns is the Postgres pool of each process a test starts: a
// quarter of production's 32 for the api and the worker (whose concurrency
// here is 4), the sse's own 8, so a few e2e tests fit in max_connections
// beside the other packages.
const processConns = 8

// apiConfig is the api's configuration on this backend.
func (b *backend) apiConfig() api.Config {
	return api.Config{
		DatabaseURL: b.DSN, Redis: b.Redis.Options(), RedisPrefix: b.Redis.Prefix, Queue: b.Redis.Queue,
		JWTSecret: []byte(testSecret), Log: b.Log, BcryptCost: bcrypt.MinCost, DBMaxConns: processConns,
	}
}

// workerConfig is a worker's configuration on this backend: the test
// materializer (its knobs in TestMaterializer), a one-second sweep.
func (b *backend) workerConfig(id string) worker.Config {
	return worker.Config{
		DatabaseURL: b.DSN, Redis: b.Redis.Options(), RedisPrefix: b.Redis.Prefix, Queue: b.Redis.Queue,
		Concurrency: 4, SweepInterval: time.Second, Materializer: worker.MaterializerTest, ID: id, Log: b.Log,
		DBMaxConns: processConns,
	}
}

// sseConfig is the sse process's configuration on this backend.
func (b *backend) sseConfig() sse.Config {
	return sse.Config{
		DatabaseURL: b.DSN, Redis: b.Redis.Options(), RedisPrefix: b.Redis.Prefix,
		JWTSecret: []byte(testSecret), Log: b.Log, DBMaxConns: processConns,
	}
}

// listen binds a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// start runs a process's Run until the test ends. A Run that returns
// before that fails the test (its listener is closed, so clients fail
// fast instead of hanging).
func start(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := run(ctx)
		if ctx.Err() == nil {
			t.Errorf("%s stopped early: %v", name, err)
		}
		done <- err
	}()
	// Registered after dbtest's cleanups, so it runs before them.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// startAPI runs api.Run with cfg (on a fresh loopback listener unless cfg
// has one) and returns its base URL.
func startAPI(t *testing.T, cfg api.Config) string {
	t.Helper()
	if cfg.Listener == nil {
		cfg.Listener = listen(t)
	}
	url := "http://" + cfg.Listener.Addr().String()
	start(t, "api", func(ctx context.Context) error { return api.Run(ctx, cfg) })
	return url
}

// startWorker runs worker.Run with cfg.
func startWorker(t *testing.T, cfg worker.Config) {
	t.Helper()
	start(t, "worker "+cfg.ID, func(ctx context.Context) error { return worker.Run(ctx, cfg) })
}

// startSSE runs sse.Run with cfg (on a fresh loopback listener unless cfg
// has one) and returns its base URL once its reader is positioned.
func startSSE(t *testing.T, cfg sse.Config) string {
	t.Helper()
	if cfg.Listener == nil {
		cfg.Listener = listen(t)
	}
	url := "http://" + cfg.Listener.Addr().String()
	start(t, "sse", func(ctx context.Context) error { return sse.Run(ctx, cfg) })
	waitReady(t, url)
	return url
}

// waitReady waits until base/readyz answers 200 (for sse: its reader has
// its position).
func waitReady(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "%s never became ready", base)
}

// createUser inserts a user with testPassword and returns it with a token.
func (b *backend) createUser(t *testing.T, name string, role domain.Role, mustChange bool) (*domain.User, string) {
	t.Helper()
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	require.NoError(t, err)
	u := &domain.User{Username: name, PasswordHash: hash, Role: role, MustChangePassword: mustChange}
	require.NoError(t, b.DB.CreateUser(context.Background(), u))
	tok, _, err := b.Tokens.Issue(u.UUID)
	require.NoError(t, err)
	return u, tok
}
