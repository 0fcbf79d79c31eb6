// Package worker is mazenet's asynq server side: it applies mutations in
// strict per-topology order, runs deploy and teardown, and sweeps stranded
// work and unrelayed events. Workers are stateless; any number may run.
package worker

import (
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/tasks"
)

// Worker holds the dependencies of every handler.
type Worker struct {
	DB           *postgres.DB
	Redis        redis.UniversalClient
	Keys         rediskey.Keys
	Relay        *relay.Relay
	Materializer materializer.Materializer
	Queue        string
	Log          *slog.Logger
	// ID names this worker process in drain leases (host:pid:random).
	ID string
	// SweepInterval is DECNET_SWEEP_INTERVAL (default 10 s).
	SweepInterval time.Duration
	// DrainLease is DECNET_DRAIN_LEASE (default DefaultDrainLease): how long
	// a dead worker can hold up its topology before another takes over.
	DrainLease time.Duration
}

// Mux routes task types to handlers.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeApply, w.handleApply)
	mux.HandleFunc(tasks.TypeDeploy, w.handleDeploy)
	mux.HandleFunc(tasks.TypeTeardown, w.handleTeardown)
	return mux
}
