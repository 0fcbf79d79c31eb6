package sse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
)

// The sse process: ParseConfig turns the environment into a Config, Run
// serves it. cmd/sse is only those two calls; tests call them too (or
// NewServer, to hold the Server itself).

// Process defaults and bounds.
const (
	// defaultPort is PORT's default on a developer's machine.
	defaultPort = 8081
	// redisPoolSize bounds the Redis connections of the process (SYSTEM §4):
	// the shared reader holds one, handshakes and lease refreshes use short
	// commands on the rest. It is a hard cap (see ParseConfig): go-redis
	// otherwise keeps a second pool for pipelines (the slot keeper's) and
	// dials past PoolSize when the pool is busy.
	redisPoolSize = 16
	// postgresPoolSize bounds the process's Postgres connections.
	// Handshakes run two short queries and snapshots one read-only
	// transaction: a small pool serves thousands of clients, and many sse
	// processes must fit in one Postgres's max_connections.
	postgresPoolSize = 8
	// openTimeout bounds the first connection to Postgres.
	openTimeout = 15 * time.Second
	// shutdownTimeout and readerStopTimeout keep the whole drain inside the
	// 10 s this process promises (and Heroku's 30 s).
	shutdownTimeout   = 6 * time.Second
	readerStopTimeout = 2500 * time.Millisecond
)

// Config is everything the sse process reads from the environment, plus
// the few things only code sets (marked below).
type Config struct {
	// Addr is the listen address, ":" + PORT.
	Addr        string
	DatabaseURL string
	Redis       *redis.Options
	// RedisPrefix prefixes every Redis key (DECNET_REDIS_PREFIX).
	RedisPrefix string
	// JWTSecret verifies access tokens; it must be the api's.
	JWTSecret []byte
	// MaxPerUser is the per-user connection cap across every sse process.
	MaxPerUser int
	// AllowedOrigins get CORS headers (DECNET_ALLOWED_ORIGINS).
	AllowedOrigins []string
	// MetricsToken, when set, may read /metrics (DECNET_METRICS_TOKEN).
	MetricsToken string
	// Keepalive is the silence before `: keepalive` (DECNET_SSE_KEEPALIVE).
	Keepalive time.Duration
	// SlotLease is the lifetime of an unrefreshed slot
	// (DECNET_SSE_SLOT_LEASE).
	SlotLease time.Duration
	LogLevel  slog.Level

	// Listener, set only in code, is served instead of listening on Addr:
	// a test binds 127.0.0.1:0 first and so knows the address. Run closes
	// it before returning.
	Listener net.Listener
	// Log, set only in code, replaces the JSON logger on stderr.
	Log *slog.Logger
}

// ParseConfig reads and checks the process's variables through getenv
// (os.Getenv in cmd/sse); every number and duration has a range (README,
// Configuration). The error names the first bad variable.
func ParseConfig(getenv func(string) string) (Config, error) {
	e := config.New(getenv)
	dev := e.Bool("DECNET_DEV", false)
	cfg := Config{
		Addr:           e.Addr(defaultPort),
		DatabaseURL:    e.DatabaseURL(),
		Redis:          e.Redis(redisPoolSize),
		RedisPrefix:    e.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix),
		JWTSecret:      e.JWTSecret(dev, auth.MinSecretLen),
		MaxPerUser:     e.Int("DECNET_SSE_MAX_PER_USER", DefaultMaxPerUser, 1, 100000),
		AllowedOrigins: e.List("DECNET_ALLOWED_ORIGINS"),
		MetricsToken:   e.String("DECNET_METRICS_TOKEN", ""),
		// Heroku's router closes a connection idle for 55 s.
		Keepalive: e.Duration("DECNET_SSE_KEEPALIVE", DefaultKeepalive, time.Second, 55*time.Second),
		// The keeper refreshes every lease/3; SYSTEM §3.5 frees a crashed
		// process's slots within 60 s.
		SlotLease: e.Duration("DECNET_SSE_SLOT_LEASE", DefaultSlotLease, 3*time.Second, 60*time.Second),
		LogLevel:  e.LogLevel(),
	}
	// A hard cap on every Redis socket the process opens: PoolSize alone is
	// the pool's usual size, not a ceiling, and go-redis v9 sends pipelines
	// (Slots' lease refresh) through a pipeline pool of its own, which made
	// 17 sockets under load. With the pipeline pool off and MaxActiveConns
	// set, a command that finds all 16 busy waits for one (PoolTimeout).
	cfg.Redis.MaxActiveConns = redisPoolSize
	cfg.Redis.PipelinePoolSize = -1
	return cfg, e.Err()
}

// NewServer wires a Server from cfg on open connections. Run uses it; tests
// that need the Server itself (its slot count, a tuned field) use it too.
func NewServer(cfg Config, db *postgres.DB, rdb redis.UniversalClient) *Server {
	keys := rediskey.New(cfg.RedisPrefix)
	return &Server{
		DB:             db,
		Redis:          rdb,
		Keys:           keys,
		Streams:        stream.New(rdb, keys),
		Tokens:         auth.NewTokens(cfg.JWTSecret, 0),
		Tickets:        auth.NewTickets(rdb, keys),
		Log:            cfg.logger(),
		MaxPerUser:     cfg.MaxPerUser,
		Keepalive:      cfg.Keepalive,
		SlotLease:      cfg.SlotLease,
		AllowedOrigins: cfg.AllowedOrigins,
		MetricsToken:   cfg.MetricsToken,
	}
}

// logger is cfg.Log, or JSON lines on stderr at cfg.LogLevel.
func (cfg Config) logger() *slog.Logger {
	if cfg.Log != nil {
		return cfg.Log
	}
	return config.NewLogger(os.Stderr, cfg.LogLevel)
}

// Run is the sse process: it opens Postgres and Redis, serves until ctx
// ends, then drains (SYSTEM §4): it stops accepting, sends every client
// `retry:` and ends its stream, releases its slots and returns within 10 s.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listener != nil {
		defer cfg.Listener.Close() // even when Run fails before serving it
	}
	log := cfg.logger()
	cfg.Log = log
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	db, err := postgres.Open(octx, cfg.DatabaseURL)
	cancel()
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(postgresPoolSize)
	db.SetMaxIdleConns(postgresPoolSize)
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()

	srv := NewServer(cfg, db, rdb)
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}

	// The reader outlives ctx: streams are ended by Shutdown first.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	log.Info("sse listening", "addr", ln.Addr().String(), "max_per_user", cmp.Or(cfg.MaxPerUser, DefaultMaxPerUser), "pid", os.Getpid())

	select {
	case err := <-serveDone:
		return err
	case err := <-runDone:
		return err
	case <-ctx.Done():
	}
	log.Info("sse shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopRun()
	select {
	case <-runDone:
	case <-time.After(readerStopTimeout):
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("sse stopped")
	return nil
}
