package e2e

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/worker"
)

// testPassword is the password of every user the end-to-end tests create.
const testPassword = "correct horse battery"

// backend is one test's wiring of the real components, on its own schema,
// Redis prefix and asynq queue: what every end-to-end test starts from, built
// the way cmd/api and cmd/worker build it. DASHBOARD_E2E_LOG=1 shows the
// components' logs.
type backend struct {
	DB      *postgres.DB
	Redis   *dbtest.Redis
	Keys    rediskey.Keys
	Streams *stream.Streams
	Relay   *relay.Relay
	Tokens  *auth.Tokens
	Tickets *auth.Tickets
	Tasks   *asynq.Client
	Log     *slog.Logger
}

// newBackend wires a fresh schema and Redis slice.
func newBackend(t *testing.T) *backend {
	t.Helper()
	return newBackendOn(t, dbtest.New(t), dbtest.NewRedis(t))
}

// newBackendOn wires an existing schema and Redis slice.
func newBackendOn(t *testing.T, db *postgres.DB, rd *dbtest.Redis) *backend {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("DASHBOARD_E2E_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	keys := rediskey.New(rd.Prefix)
	streams := stream.New(rd.Client, keys)
	return &backend{
		DB: db, Redis: rd, Keys: keys, Streams: streams,
		Relay:   relay.New(db, streams, log),
		Tokens:  auth.NewTokens([]byte("e2e-secret-e2e-secret-e2e-secret-e2e!"), 0),
		Tickets: auth.NewTickets(rd.Client, keys),
		Tasks:   asynq.NewClientFromRedisClient(rd.Client),
		Log:     log,
	}
}

// apiServer returns the API on this backend (not yet serving).
func (b *backend) apiServer() *api.Server {
	return &api.Server{DB: b.DB, Redis: b.Redis.Client, Keys: b.Keys, Tokens: b.Tokens, Tickets: b.Tickets,
		Relay: b.Relay, Tasks: b.Tasks, Queue: b.Redis.Queue, Log: b.Log, BcryptCost: bcrypt.MinCost}
}

// newWorker returns a worker on this backend (not yet running).
func (b *backend) newWorker(id string, mat materializer.Materializer) *worker.Worker {
	return &worker.Worker{DB: b.DB, Redis: b.Redis.Client, Keys: b.Keys, Relay: b.Relay, Materializer: mat,
		Queue: b.Redis.Queue, Log: b.Log, ID: id, SweepInterval: time.Second}
}

// testMaterializer is the test materializer logging to this backend's Redis.
func (b *backend) testMaterializer(cfg materializer.TestConfig) *materializer.Test {
	return &materializer.Test{Config: cfg, Redis: b.Redis.Client, LogKey: b.Keys.MaterializerCalls()}
}

// startWorker runs w as cmd/worker does — an asynq server with w's config
// plus its background loops (fast path, sweep) — until the test ends.
func (b *backend) startWorker(t *testing.T, w *worker.Worker) {
	t.Helper()
	cfg := w.ServerConfig()
	cfg.Concurrency = 4
	cfg.ShutdownTimeout = 5 * time.Second
	srv := asynq.NewServerFromRedisClient(b.Redis.Client, cfg)
	require.NoError(t, srv.Start(w.Mux()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Registered after dbtest's cleanups, so it runs before them.
	t.Cleanup(func() {
		cancel()
		srv.Shutdown()
		<-done
	})
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
