// Package process is the plumbing the api, worker and sse processes share,
// so each Run reads as what is particular to it: the logger (Logger), the
// connections to Postgres and Redis (Run), and for the two HTTP processes
// the listener (Listen) and the serve-then-drain loop (Serve). Parsing the
// environment is internal/config's; the HTTP edge itself (server limits,
// errors, middleware) is internal/web's.
package process

import (
	"context"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/postgres"
)

// Stores are the connections a process serves from.
type Stores struct {
	DB    *postgres.DB
	Redis *redis.Client
}

// Conns says where a process's stores are, from its Config.
type Conns struct {
	DatabaseURL string
	// MaxConns bounds the Postgres pool (DECNET_DB_MAX_CONNS).
	MaxConns int
	Redis    *redis.Options
	// OpenTimeout, when positive, bounds the first Postgres connection.
	OpenTimeout time.Duration
	// Listener, a listener code handed in (Config.Listener), is closed when
	// Run returns, even when opening the stores failed.
	Listener net.Listener
}

// Run opens the stores c names, runs fn with them (until the process ends)
// and closes them when fn returns.
func Run(ctx context.Context, c Conns, fn func(*Stores) error) error {
	if c.Listener != nil {
		defer c.Listener.Close()
	}
	octx, cancel := ctx, context.CancelFunc(func() {})
	if c.OpenTimeout > 0 {
		octx, cancel = context.WithTimeout(ctx, c.OpenTimeout)
	}
	db, err := postgres.OpenPool(octx, c.DatabaseURL, c.MaxConns)
	cancel()
	if err != nil {
		return err
	}
	defer db.Close()
	rdb := redis.NewClient(c.Redis)
	defer rdb.Close()
	return fn(&Stores{DB: db, Redis: rdb})
}
