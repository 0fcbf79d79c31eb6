package api

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/process"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/web"
	"github.com/decnet/mazenet/tasks"
)

// The api process: ParseConfig turns the environment into a Config, Run
// serves it. cmd/api is only those two calls; tests call them too (or
// NewServer, to hold the Server itself).

// Process defaults.
const (
	// defaultPort is PORT's default on a developer's machine.
	defaultPort = 8080
	// shutdownTimeout bounds the drain of in-flight requests, inside
	// Heroku's 30 s.
	shutdownTimeout = 20 * time.Second
)

// Config is everything the api process reads from the environment, plus
// the few things only code sets (marked below).
type Config struct {
	// Addr is the listen address, ":" + PORT.
	Addr        string
	DatabaseURL string
	Redis       *redis.Options
	// RedisPrefix prefixes every Redis key (DECNET_REDIS_PREFIX).
	RedisPrefix string
	// Queue is the asynq queue tasks go to (DECNET_QUEUE).
	Queue string
	// JWTSecret signs access tokens; the sse process verifies them with it.
	JWTSecret []byte
	// TokenTTL is the access-token lifetime (DECNET_JWT_EXP_MINUTES).
	TokenTTL time.Duration
	// Dev is DECNET_DEV: a developer's machine (README).
	Dev bool
	// SSEPublicURL is where the dashboard opens EventSource ("" = same
	// origin).
	SSEPublicURL string
	// MetricsToken, when set, may read /metrics (DECNET_METRICS_TOKEN).
	MetricsToken string
	// TrustProxy takes the login rate limit's client IP from the last
	// X-Forwarded-For hop (DECNET_TRUST_PROXY).
	TrustProxy bool
	// Materializer (DECNET_MATERIALIZER) and TestMaterializer
	// (DECNET_TEST_MAT_*) select what heal asks for health: the same
	// variables the worker reads (DOMAIN §15).
	Materializer     string
	TestMaterializer materializer.TestConfig
	LogLevel         slog.Level
	// DBMaxConns bounds the Postgres pool (DECNET_DB_MAX_CONNS; 0 =
	// postgres.DefaultMaxConns).
	DBMaxConns int

	// Listener, set only in code, is served instead of listening on Addr:
	// a test binds 127.0.0.1:0 first and so knows the address. Run closes
	// it before returning.
	Listener net.Listener
	// Log, set only in code, replaces the JSON logger on stderr.
	Log *slog.Logger
	// BcryptCost, set only in code, is the cost of new password hashes (0
	// = auth.BcryptCost); tests lower it.
	BcryptCost int
}

// ParseConfig reads and checks the process's variables through getenv
// (os.Getenv in cmd/api); every number has a range (README,
// Configuration). The error names the first bad variable.
func ParseConfig(getenv func(string) string) (Config, error) {
	e := config.New(getenv)
	dev := e.Bool("DECNET_DEV", false)
	mat, matCfg := materializer.ParseEnv(e)
	cfg := Config{
		Addr:        e.Addr(defaultPort),
		DatabaseURL: e.DatabaseURL(),
		Redis:       e.Redis(0),
		RedisPrefix: e.String("DECNET_REDIS_PREFIX", rediskey.DefaultPrefix),
		Queue:       e.String("DECNET_QUEUE", tasks.DefaultQueue),
		JWTSecret:   e.JWTSecret(dev, auth.MinSecretLen),
		// One minute to one week.
		TokenTTL:         time.Duration(e.Int("DECNET_JWT_EXP_MINUTES", int(auth.DefaultTokenTTL/time.Minute), 1, 7*24*60)) * time.Minute,
		Dev:              dev,
		SSEPublicURL:     e.String("DECNET_SSE_PUBLIC_URL", ""),
		MetricsToken:     e.String("DECNET_METRICS_TOKEN", ""),
		TrustProxy:       e.Bool("DECNET_TRUST_PROXY", false),
		LogLevel:         e.LogLevel(),
		DBMaxConns:       e.DBMaxConns(postgres.DefaultMaxConns),
		Materializer:     mat,
		TestMaterializer: matCfg,
	}
	return cfg, e.Err()
}

// Run is the api process: it opens Postgres and Redis, serves until ctx
// ends, then drains in-flight requests (up to 20 s) and returns.
func Run(ctx context.Context, cfg Config) error {
	cfg.Log = process.Logger(cfg.Log, cfg.LogLevel)
	conns := process.Conns{DatabaseURL: cfg.DatabaseURL, MaxConns: cmp.Or(cfg.DBMaxConns, postgres.DefaultMaxConns),
		Redis: cfg.Redis, Listener: cfg.Listener}
	return process.Run(ctx, conns, func(st *process.Stores) error {
		srv := web.NewServer(cfg.Addr, NewServer(cfg, st.DB, st.Redis).Handler(), web.APITimeouts(), cfg.Log)
		return process.Serve(ctx, srv, process.Serving{Listener: cfg.Listener, Addr: cfg.Addr,
			Name: "api", Log: cfg.Log, Attrs: []any{"dev", cfg.Dev}, Grace: shutdownTimeout})
	})
}

// NewServer wires a Server from cfg on open connections. Run uses it; tests
// that need the Server itself use it too. The asynq monitoring UI is
// mounted when cfg.Redis is set.
func NewServer(cfg Config, db *postgres.DB, rdb redis.UniversalClient) *Server {
	log := process.Logger(cfg.Log, cfg.LogLevel)
	keys := rediskey.New(cfg.RedisPrefix)
	return &Server{
		DB:                db,
		Redis:             rdb,
		Keys:              keys,
		Tokens:            auth.NewTokens(cfg.JWTSecret, cfg.TokenTTL),
		Tickets:           auth.NewTickets(rdb, keys),
		Relay:             relay.New(db, stream.New(rdb, keys), log),
		Tasks:             asynq.NewClientFromRedisClient(rdb),
		Queue:             cfg.Queue,
		Log:               log,
		Materializer:      materializer.New(cfg.Materializer, cfg.TestMaterializer, rdb, keys),
		BcryptCost:        cfg.BcryptCost,
		SSEPublicURL:      cfg.SSEPublicURL,
		TrustProxyHeaders: cfg.TrustProxy,
		MetricsToken:      cfg.MetricsToken,
		AsynqRedis:        cfg.Redis,
	}
}
