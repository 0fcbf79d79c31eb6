package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/stream"
)

// Background loops of a worker process: the periodic sweep and the fast-path
// wake-up tailer. cmd/worker runs them with Run beside the asynq server.

// DefaultSweepInterval is DECNET_SWEEP_INTERVAL's default (SYSTEM §2).
const DefaultSweepInterval = 10 * time.Second

// Tuning of the loops.
const (
	// strandedBatch bounds how many topologies one sweep drains.
	strandedBatch = 1000
	// sweepParallel bounds the sweep's concurrent drains.
	sweepParallel = 8
	// fastParallel bounds the tailer's concurrent drains.
	fastParallel = 32
	// retainedOutbox is how many newest outbox events per topology the
	// sweep never prunes: the resume retention of DOMAIN §10, since resumes
	// replay from the outbox.
	retainedOutbox = 1000
	// pruneKeysBatch bounds how many expired idempotency keys one sweep
	// deletes (more wait for the next sweep).
	pruneKeysBatch = 10000
	// tailBlock is how long one XREAD waits; it bounds shutdown latency.
	tailBlock = 2 * time.Second
	// taskCheckInterval is asynq's idle poll. The fast path carries the
	// latency; this only bounds a wake-up when the tailer is not running.
	taskCheckInterval = 100 * time.Millisecond
)

// ServerConfig is the asynq server configuration shared by cmd/worker and
// the tests: this worker's queue, a 20 s shutdown (inside Heroku's 30 s) and
// JSON logs through the worker's logger. Callers may change Concurrency.
//
// asynq (v0.26) polls: when every queue is empty, its processor sleeps
// TaskCheckInterval/2 plus a random jitter of up to TaskCheckInterval before
// the next Dequeue script, so a wake-up waits ~TaskCheckInterval on average.
// Any positive value is accepted, but a few milliseconds would mean hundreds
// of Lua calls per second per idle process. The latency target (p50 ≤ 10 ms)
// is met instead by the fast path in Run, and asynq stays the durable path
// (a task survives a worker restart).
func (w *Worker) ServerConfig() asynq.Config {
	return asynq.Config{
		Queues:            map[string]int{w.Queue: 1},
		Concurrency:       16,
		TaskCheckInterval: taskCheckInterval,
		ShutdownTimeout:   20 * time.Second,
		Logger:            asynqLogger{w.log()},
		LogLevel:          asynq.WarnLevel,
	}
}

// Run runs the worker's background loops until ctx ends: the sweep (every
// SweepInterval) and the fast-path tailer. It returns nil after ctx ends and
// every drain it started has stopped.
//
// Fast path (deviation from "asynq only", for latency): every process tails
// the all-topologies stream (one blocking XREAD on one connection) and on
// `mutation.enqueued` drains that topology at once; losers of the lease race
// return after one statement. Within a process, drains of one topology are
// coalesced (a wake-up that arrives mid-drain just asks for one more pass).
// The asynq task the API sends stays the durable wake-up, and the sweep the
// last resort.
func (w *Worker) Run(ctx context.Context) error {
	g := newDrainGroup(ctx, w, fastParallel)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.sweepLoop(ctx) }()
	go func() { defer wg.Done(); w.tail(ctx, g) }()
	wg.Wait()
	g.wait()
	return nil
}

// sweepLoop sweeps every SweepInterval. One process sweeps per interval: the
// holder of a Redis SET NX PX lock on keys.SweepLeader() that expires before
// the next tick. The election only saves work; sweeping from several
// processes at once is harmless (leases, the stamping lock and the stream's
// append script make it so).
func (w *Worker) sweepLoop(ctx context.Context) {
	interval := w.SweepInterval
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.Redis != nil {
			won, err := w.Redis.SetNX(ctx, w.Keys.SweepLeader(), w.ID, interval*9/10).Result()
			if err == nil && !won {
				w.updateQueueDepth(ctx) // every process reports the same figure
				continue
			}
			// Redis down: sweep anyway; the relay part will fail and log, the
			// drains need only Postgres.
		}
		if err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
			w.log().WarnContext(ctx, "sweep incomplete", "err", err)
		}
	}
}

// Sweep repairs whatever the fast paths missed (SYSTEM §3): it stamps and
// relays outbox events that never reached Redis, drains every live topology
// that has open mutations and no live lease (a lost wake-up or a dead
// worker), finishes abandoned deploys and teardowns (SweepLifecycle),
// updates the queue-depth metric, prunes outbox rows that Redis has and
// that are beyond the newest 1,000 of their topology, and deletes
// idempotency keys older than 24 h. It returns the first error and still
// does the other parts.
func (w *Worker) Sweep(ctx context.Context) error {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if w.Relay != nil {
		keep(w.Relay.Sweep(ctx))
	}
	tids, err := w.DB.StrandedTopologies(ctx, strandedBatch)
	keep(err)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, sweepParallel)
	for _, tid := range tids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.Drain(ctx, tid); err != nil {
				mu.Lock()
				keep(fmt.Errorf("drain %s: %w", tid, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	keep(w.SweepLifecycle(ctx))
	keep(w.updateQueueDepth(ctx))
	_, err = w.DB.PruneEvents(ctx, retainedOutbox)
	keep(err)
	_, err = w.DB.PruneIdempotencyKeys(ctx, pruneKeysBatch)
	keep(err)
	return firstErr
}

// updateQueueDepth sets the queue-depth gauge from the database.
func (w *Worker) updateQueueDepth(ctx context.Context) error {
	pending, applying, err := w.DB.OpenMutationCounts(ctx)
	if err != nil {
		return err
	}
	queueDepth.WithLabelValues("pending").Set(float64(pending))
	queueDepth.WithLabelValues("applying").Set(float64(applying))
	return nil
}

// tail is the fast-path wake-up: it follows the event stream from its
// current end and drains each topology that gets a mutation.enqueued. It
// needs no exactness (asynq and the sweep are the durable wake-ups), so it
// does not fill positions the stream skipped.
func (w *Worker) tail(ctx context.Context, g *drainGroup) {
	if w.Relay == nil || w.Relay.Streams == nil {
		return
	}
	s := w.Relay.Streams
	var last stream.ID
	positioned := false
	failing := false
	for ctx.Err() == nil {
		var entries []stream.Entry
		var err error
		if !positioned {
			last, err = s.LastAllID(ctx)
			positioned = err == nil
		} else {
			entries, err = s.ReadAll(ctx, last, tailBlock, 512)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				w.log().WarnContext(ctx, "wake-up tailer cannot read the stream; asynq and the sweep carry on", "err", err)
				failing = true
			}
			positioned = false
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if failing {
			w.log().InfoContext(ctx, "wake-up tailer reading again")
			failing = false
		}
		for _, e := range entries {
			last = e.ID
			if e.Name == domain.EventEnqueued && e.TopologyID != "" {
				g.kick(e.TopologyID)
			}
		}
	}
}

// drainGroup runs fast-path drains with bounded parallelism and coalesces
// wake-ups per topology within this process.
type drainGroup struct {
	ctx context.Context
	w   *Worker
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool // topology → another pass requested
}

func newDrainGroup(ctx context.Context, w *Worker, parallel int) *drainGroup {
	return &drainGroup{ctx: ctx, w: w, sem: make(chan struct{}, parallel), running: map[string]bool{}}
}

// kick drains tid now, or once more after the drain already running here.
func (g *drainGroup) kick(tid string) {
	g.mu.Lock()
	if _, busy := g.running[tid]; busy {
		g.running[tid] = true
		g.mu.Unlock()
		return
	}
	g.running[tid] = false
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case g.sem <- struct{}{}:
			case <-g.ctx.Done():
				g.mu.Lock()
				delete(g.running, tid)
				g.mu.Unlock()
				return
			}
			if err := g.w.Drain(g.ctx, tid); err != nil && g.ctx.Err() == nil {
				g.w.log().WarnContext(g.ctx, "fast-path drain", "topology_id", tid, "err", err)
			}
			<-g.sem
			g.mu.Lock()
			if g.running[tid] {
				g.running[tid] = false
				g.mu.Unlock()
				continue
			}
			delete(g.running, tid)
			g.mu.Unlock()
			return
		}
	}()
}

func (g *drainGroup) wait() { g.wg.Wait() }

// asynqLogger routes asynq's logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq")
	os.Exit(1)
}
