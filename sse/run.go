package sse

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/process"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
)

// The sse process: ParseConfig turns the environment into a Config, Run
// serves it. cmd/sse is only those two calls; tests call them too (or
// NewServer, to hold the Server itself).

// DefaultDBMaxConns is DECNET_DB_MAX_CONNS's default for an sse process.
// Handshakes run two short queries and snapshots one read-only transaction:
// a small pool serves thousands of clients, and many sse processes must fit
// in one Postgres's max_connections.
const DefaultDBMaxConns = 8

// Process defaults and bounds.
const (
	// defaultPort is PORT's default on a developer's machine.
	defaultPort = 8081
	// redisPoolSize bounds the Redis connections of the process (SYSTEM §4):
	// the shared reader holds one, handshakes and lease refreshes use short
	// commands on the rest. It is a hard cap (see ParseConfig): go-redis
	// otherwise keeps a second pool for pipelines (the slot keeper's) and
	// dials past PoolSize when the pool is busy. The revocation subscription
	// (revoke.go) holds one more socket outside the pool: 15 + 1 = 16.
	redisPoolSize = 15
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
	// DBMaxConns bounds the Postgres pool (DECNET_DB_MAX_CONNS; 0 =
	// DefaultDBMaxConns).
	DBMaxConns int

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
		SlotLease:  e.Duration("DECNET_SSE_SLOT_LEASE", DefaultSlotLease, 3*time.Second, 60*time.Second),
		LogLevel:   e.LogLevel(),
		DBMaxConns: e.DBMaxConns(DefaultDBMaxConns),
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

// Run is the sse process: it opens Postgres and Redis, serves until ctx
// ends, then drains (SYSTEM §4): it stops accepting, sends every client
// `retry:` and ends its stream, releases its slots and returns within 10 s.
func Run(ctx context.Context, cfg Config) error {
	cfg.Log = process.Logger(cfg.Log, cfg.LogLevel)
	conns := process.Conns{DatabaseURL: cfg.DatabaseURL, MaxConns: cmp.Or(cfg.DBMaxConns, DefaultDBMaxConns),
		Redis: cfg.Redis, OpenTimeout: openTimeout, Listener: cfg.Listener}
	return process.Run(ctx, conns, func(st *process.Stores) error { return serve(ctx, cfg, NewServer(cfg, st.DB, st.Redis)) })
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
		Log:            process.Logger(cfg.Log, cfg.LogLevel),
		MaxPerUser:     cfg.MaxPerUser,
		Keepalive:      cfg.Keepalive,
		SlotLease:      cfg.SlotLease,
		AllowedOrigins: cfg.AllowedOrigins,
		MetricsToken:   cfg.MetricsToken,
	}
}

// serve runs srv's reader and serves srv until ctx ends, then drains: the
// streams end first (Shutdown), the reader after them.
func serve(ctx context.Context, cfg Config, srv *Server) error {
	// The reader outlives ctx: streams are ended by Shutdown first.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	readerStopped := make(chan struct{})
	go func() {
		runDone <- srv.Run(runCtx)
		close(readerStopped)
	}()
	err := process.Serve(ctx, srv, process.Serving{Listener: cfg.Listener, Addr: cfg.Addr,
		Name: "sse", Log: cfg.Log, Grace: shutdownTimeout, Died: runDone,
		Attrs: []any{"max_per_user", cmp.Or(cfg.MaxPerUser, DefaultMaxPerUser), "pid", os.Getpid()},
	})
	if ctx.Err() == nil {
		return err // serving or the reader failed: no drain
	}
	stopRun()
	select {
	case <-readerStopped:
	case <-time.After(readerStopTimeout):
	}
	if err != nil {
		return err
	}
	cfg.Log.Info("sse stopped")
	return nil
}
