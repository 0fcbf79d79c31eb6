// Package worker is mazenet's asynq server side: it applies mutations in
// strict per-topology order, runs deploy and teardown, and sweeps stranded
// work and unrelayed events. Workers are stateless; any number may run.
package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
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
	// Concurrency is how many tasks Serve runs at once (0 = asynq's
	// ServerConfig default).
	Concurrency int
	Log         *slog.Logger
	// ID names this worker process in drain leases (host:pid:random).
	ID string
	// SweepInterval is DECNET_SWEEP_INTERVAL (default 10 s).
	SweepInterval time.Duration
	// DrainLease is DECNET_DRAIN_LEASE (default DefaultDrainLease): how long
	// a dead worker can hold up its topology (its drain, deploy or teardown)
	// before another takes over.
	DrainLease time.Duration
	// Now is the worker's clock for its local lease checks (time.Now when
	// nil); tests move it to play a worker paused past its lease.
	Now func() time.Time
}

// Mux routes task types to handlers.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeApply, w.handleApply)
	mux.HandleFunc(tasks.TypeDeploy, w.handleDeploy)
	mux.HandleFunc(tasks.TypeTeardown, w.handleTeardown)
	return mux
}

// log returns the worker's logger (slog.Default when unset).
func (w *Worker) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}

// materializer returns the worker's materializer (Noop when unset).
func (w *Worker) materializer() materializer.Materializer {
	if w.Materializer == nil {
		return materializer.Noop{}
	}
	return w.Materializer
}

// publish hands committed events to the relay. It runs even when ctx is
// ending (the events are committed); anything it cannot do, the sweep does.
func (w *Worker) publish(ctx context.Context, evs ...domain.Event) {
	if len(evs) == 0 || w.Relay == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	w.Relay.Publish(pctx, evs...)
}

// announce hands committed events to the relay without waiting for them to
// reach Redis (relay.Relay.Notify): a drain pass goes on to its next
// mutation while the relay's round stamps and appends, and consecutive
// mutations' events share rounds. Drain waits for the relay once, at its
// end (flushRelay).
func (w *Worker) announce(evs ...domain.Event) {
	if len(evs) == 0 || w.Relay == nil {
		return
	}
	w.Relay.Notify()
}

// flushRelay waits (up to 5 s, even when ctx is ending: the events are
// committed) for a relay round that starts now, so every event this
// process committed before the call has been stamped and appended, or left
// for the sweep, when it returns.
func (w *Worker) flushRelay(ctx context.Context) {
	if w.Relay == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	select {
	case <-w.Relay.Notify():
	case <-pctx.Done():
	}
}
