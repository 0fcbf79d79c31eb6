package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// The drain (DOMAIN §4.4, SYSTEM §3.2). Any number of worker processes may
// try to drain a topology at once; a lease on the topology row
// (drain_owner, drain_until) makes exactly one of them the drainer. The
// drainer renews the lease while it works and applies the topology's open
// mutations one by one, in seq order, each in three short steps:
//
//  1. claim: one statement moves the lowest pending row to applying
//     (fenced by the lease and liveness);
//  2. op: one transaction runs domain.ApplyOp on the loaded view, persists
//     the diff, stamps the row committed_at with its materializer effects
//     and records `mutation.applying`; with nothing to materialise it also
//     marks the row applied and records `mutation.applied`;
//  3. after commit: materialise (best effort), then one statement marks the
//     row applied and records `mutation.applied`.
//
// A failure in step 2 rolls the op back and, in one transaction, fails the
// row, records `mutation.applying` and `mutation.failed` (and degrades an
// active topology); the pass stops there. A row found in `applying` belongs
// to a dead worker whose lease expired: with committed_at set only step 3
// runs again (materialisers are idempotent), otherwise the op is re-run (its
// transaction never committed). Every event is written to the outbox in the
// transaction that makes its change, and every step is fenced on the row's
// state (the committed_at stamp commits once), so each event exists exactly
// once. Why `applying` is written by step 2 rather than by the claim: see
// postgres.ClaimNext (it saves a synchronous commit per mutation).
//
// Lease writes and the claim commit asynchronously (see postgres.ClaimNext);
// the op and terminal commits are synchronous, and events are published to
// Redis only after their commit returns.

// DefaultDrainLease is how long a drain lease lasts without renewal: the
// longest a dead worker can block its topology (SYSTEM §3.2 allows 30 s).
const DefaultDrainLease = 15 * time.Second

// Reason texts (DOMAIN §4.4). Internal failures never show their cause.
const (
	reasonCategory = "MutationError: "
	reasonInternal = "InternalError: the mutation could not be applied"
)

// Metrics of the pipeline (SYSTEM §5).
var (
	mutationsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "mazenet_mutations_total",
		Help: "Mutations that reached a terminal state, by outcome (applied, failed).",
	}, []string{"outcome"})
	mutationLatency = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "mazenet_mutation_enqueue_to_applied_seconds",
		Help:    "Time from a mutation's enqueue to its applied commit.",
		Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	queueDepth = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mazenet_mutation_queue_depth",
		Help: "Open mutations across all topologies, by state (pending, applying); updated by the sweep.",
	}, []string{"state"})
)

// drainLease is the lease duration: DrainLease, or DefaultDrainLease.
func (w *Worker) drainLease() time.Duration {
	if w.DrainLease > 0 {
		return w.DrainLease
	}
	return DefaultDrainLease
}

// handleApply is the durable wake-up: it drains the task's topology.
func (w *Worker) handleApply(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Parse(t)
	if err != nil {
		return err
	}
	return w.Drain(ctx, p.TopologyID)
}

// Drain applies a topology's open mutations in seq order if no other drainer
// holds its lease; it returns nil at once when one does or when there is
// nothing to do. It is safe to call from any number of goroutines and
// processes at once. After each pass it releases the lease and tries again,
// which closes the lost-wake-up race: a wake-up that lost the lease race to
// this pass is honoured by the next one. A pass that failed a mutation stops
// without retrying (DOMAIN §4.4: the next wake-up or sweep goes on).
func (w *Worker) Drain(ctx context.Context, topologyID string) error {
	for {
		n, stopped, err := w.drainOnce(ctx, topologyID)
		if err != nil || stopped || n == 0 {
			return err
		}
	}
}

// drainOnce runs one pass under a fresh lease owner. It returns how many
// mutations reached a terminal state and whether the pass stopped early (a
// failure, a lost lease or fencing); n=0 and stopped=true also mean "someone
// else holds the lease, or there is nothing to do".
func (w *Worker) drainOnce(ctx context.Context, tid string) (n int, stopped bool, err error) {
	owner := w.ID + "#" + uuid.NewString()[:8]
	lease := w.drainLease()
	// The first claim takes the lease; only then is there anything to renew
	// or release.
	m, claimed, err := w.DB.ClaimNext(ctx, tid, owner, lease)
	if err != nil || m == nil {
		return 0, true, err
	}
	passCtx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		w.renewLease(passCtx, cancel, tid, owner, lease)
	}()
	n, stopped, err = w.drainPass(passCtx, tid, owner, m, claimed)
	cancel()
	<-renewed
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	if rerr := w.DB.ReleaseDrainLease(relCtx, tid, owner); rerr != nil {
		w.log().WarnContext(ctx, "drain lease not released; it expires", "topology_id", tid, "err", rerr)
	}
	if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		// Our lease was lost mid-pass; the new holder carries on.
		return n, true, nil
	}
	return n, stopped, err
}

// renewLease extends the lease every third of its duration until ctx ends,
// and cancels the pass (lost) when the lease turns out to be someone else's.
func (w *Worker) renewLease(ctx context.Context, lost context.CancelFunc, tid, owner string, lease time.Duration) {
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := w.DB.RenewDrainLease(ctx, tid, owner, lease)
		if err != nil {
			if ctx.Err() == nil {
				w.log().WarnContext(ctx, "drain lease renewal failed", "topology_id", tid, "err", err)
			}
			continue
		}
		if !ok {
			w.log().WarnContext(ctx, "drain lease lost; stopping this pass", "topology_id", tid)
			lost()
			return
		}
	}
}

// drainPass applies open mutations while it holds the lease, starting with
// m (claimed by drainOnce, or already applying when claimed is false).
func (w *Worker) drainPass(ctx context.Context, tid, owner string, m *postgres.OpenMutation, claimed bool) (n int, stopped bool, err error) {
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return n, true, err
		}
		if !first {
			if m, claimed, err = w.DB.ClaimNext(ctx, tid, owner, w.drainLease()); err != nil || m == nil {
				return n, err != nil, err
			}
		}
		log := w.log().With("topology_id", tid, "mutation_id", m.ID, "op", m.Op)
		if !claimed {
			if m.State != domain.MutationApplying {
				return n, true, nil // not ours to take: stop
			}
			log.InfoContext(ctx, "recovering a mutation left applying", "committed", m.CommittedAt != nil)
		}
		if m.CommittedAt != nil {
			running, err := w.rematerialize(ctx, m)
			if err != nil {
				return n, true, err
			}
			if err := w.finish(ctx, log, &m.Mutation, running); err != nil {
				return n, true, err
			}
			n++
			continue
		}
		c, err := w.DB.CommitMutation(ctx, &m.Mutation, uuid.NewString)
		switch {
		case errors.Is(err, postgres.ErrMutationFenced):
			return n, true, nil
		case err != nil && ctx.Err() != nil:
			// Shutting down or lease lost: nothing committed; whoever drains
			// next re-runs the op.
			return n, true, ctx.Err()
		case err != nil:
			if ferr := w.fail(ctx, log, &m.Mutation, err); ferr != nil {
				return n, true, ferr
			}
			return n + 1, true, nil
		}
		w.publish(ctx, c.Events...)
		if c.Applied {
			mutationsTotal.WithLabelValues("applied").Inc()
			mutationLatency.Observe(c.Age)
			n++
			continue
		}
		var running []string
		if c.Materialize {
			running = w.materialize(ctx, log, &c.After.Topology, c.Effects, c.After, c.Before)
		}
		if err := w.finish(ctx, log, &m.Mutation, running); err != nil {
			return n, true, err
		}
		n++
	}
}

// finish marks an applying mutation applied (and the deckies whose spawn
// succeeded running) and publishes the event.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, m *domain.Mutation, running []string) error {
	ev, age, ok, err := w.DB.FinishMutation(ctx, m, running)
	if err != nil {
		return err
	}
	if !ok {
		log.WarnContext(ctx, "mutation finished elsewhere")
		return nil
	}
	w.publish(ctx, ev)
	mutationsTotal.WithLabelValues("applied").Inc()
	mutationLatency.Observe(age)
	return nil
}

// fail records an op's rejection (or an internal failure, whose cause is
// logged, never stored) and publishes the resulting events.
func (w *Worker) fail(ctx context.Context, log *slog.Logger, m *domain.Mutation, cause error) error {
	reason := reasonInternal
	var de *domain.Error
	if errors.As(cause, &de) && de.Code != domain.EInternal {
		reason = reasonCategory + de.Message
		log.InfoContext(ctx, "mutation rejected", "reason", reason)
	} else {
		log.ErrorContext(ctx, "mutation failed internally", "err", cause)
	}
	evs, err := w.DB.FailMutation(ctx, m, reason)
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		mutationsTotal.WithLabelValues("failed").Inc()
	}
	w.publish(ctx, evs...)
	return nil
}

// rematerialize re-runs the stored effects of a mutation whose op committed
// before its worker died, if the topology is still materialised, and
// returns the deckies whose spawn succeeded.
func (w *Worker) rematerialize(ctx context.Context, m *postgres.OpenMutation) ([]string, error) {
	if len(m.Effects) == 0 {
		return nil, nil
	}
	h, err := w.DB.GetHydrated(ctx, m.TopologyID)
	if err != nil {
		return nil, err
	}
	if !h.Topology.Status.Live() || h.Topology.Mode != domain.ModeUnihost {
		return nil, nil
	}
	log := w.log().With("topology_id", m.TopologyID, "mutation_id", m.ID, "op", m.Op)
	return w.materialize(ctx, log, &h.Topology, m.Effects, h), nil
}

// materialize makes an op's materializer calls in order (DOMAIN §15). LANs
// and deckies are looked up by name in views, first match wins (the result,
// then the state before the op, for what the op removed); errors are logged
// and never fail the mutation. It returns the uuids of the deckies whose
// Spawn succeeded: finish marks them running with the mutation.
func (w *Worker) materialize(ctx context.Context, log *slog.Logger, t *domain.Topology, effects []domain.Effect, views ...*domain.Hydrated) (running []string) {
	mat := w.materializer()
	lan := func(name string) *domain.LAN {
		for _, h := range views {
			for i := range h.LANs {
				if h.LANs[i].Name == name {
					return &h.LANs[i]
				}
			}
		}
		return &domain.LAN{TopologyID: t.ID, Name: name}
	}
	decky := func(name string) *domain.Decky {
		for _, h := range views {
			for i := range h.Deckies {
				if h.Deckies[i].Name == name {
					return &h.Deckies[i]
				}
			}
		}
		return &domain.Decky{TopologyID: t.ID, Name: name}
	}
	for _, e := range effects {
		var err error
		switch e.Call {
		case domain.CallCreateNetwork:
			err = mat.CreateNetwork(ctx, t, lan(e.LAN))
		case domain.CallRemoveNetwork:
			err = mat.RemoveNetwork(ctx, t, lan(e.LAN))
		case domain.CallSpawn:
			d := decky(e.Decky)
			var ok bool
			if ok, err = mat.Spawn(ctx, t, d); ok && d.UUID != "" {
				running = append(running, d.UUID)
			}
		case domain.CallRemove:
			err = mat.Remove(ctx, t, decky(e.Decky))
		case domain.CallConnect:
			err = mat.Connect(ctx, t, decky(e.Decky), lan(e.LAN), e.IP)
		case domain.CallDisconnect:
			err = mat.Disconnect(ctx, t, decky(e.Decky), lan(e.LAN))
		case domain.CallServicesDiff:
			err = mat.ServicesDiff(ctx, t, decky(e.Decky), e.Added, e.Removed)
		case domain.CallRecreateBase:
			err = mat.RecreateBase(ctx, t, decky(e.Decky))
		default:
			log.WarnContext(ctx, "unknown materializer call skipped", "call", e.Call)
		}
		if err != nil {
			log.WarnContext(ctx, "materializer call failed; the database stays the source of truth",
				"call", e.Call, "lan", e.LAN, "decky", e.Decky, "err", err)
		}
	}
	return running
}
