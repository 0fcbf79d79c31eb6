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
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// The drain (DOMAIN §4.4, SYSTEM §3.2, §3.8). Any number of worker
// processes may try to drain a topology at once; a lease on the topology row
// (drain_owner, drain_until) makes exactly one of them the drainer, and
// every new holder of that lease takes a higher fence (the topology's lease
// generation, which only grows). The drainer renews the lease while it works
// and applies the topology's open mutations one by one, in seq order, each
// in three short steps:
//
//  1. claim: one statement takes (or keeps) the lease, moves the lowest
//     pending row to applying (fenced by the lease and liveness) and returns
//     the lease's fence;
//  2. op: one transaction runs domain.ApplyOp on the topology's view,
//     persists the diff, stamps the row committed_at with its materializer
//     effects (each with the LAN and decky it acts on, captured here) and
//     records `mutation.applying`; with nothing to materialise it also
//     marks the row applied and records `mutation.applied`;
//  3. after commit: materialise (best effort; every call carries the fence
//     and is preceded by a local check of the lease), then one statement
//     marks the row applied and records `mutation.applied`.
//
// A pass loads the view once: the first op of the pass reads it in its
// transaction, and every later op runs on the view the previous op
// committed (postgres.CommitMutationOn), with the deckies step 3 marked
// running applied to it (postgres.MarkRunning). Nothing else can have
// changed the topology's LANs, deckies or edges meanwhile: every other
// writer of a live topology's content (deploy, teardown, heal) takes the
// lease first, and taking it raises the fence, so a claim that returns a
// fence other than the pass's drops the view and the next op loads it
// again; so does the recovery of a mutation left applying, and any error
// ends the pass. Each mutation is still its own claim, op commit and finish
// commit with its own events, so none of the guarantees below changes.
//
// A failure in step 2 rolls the op back and, in one transaction, fails the
// row, records `mutation.applying` and `mutation.failed` (and degrades an
// active topology); the pass stops there. A row found in `applying` belongs
// to a dead worker whose lease expired: with committed_at set only step 3
// runs again, from the stored effects and never from the current view (which
// no longer holds what the op removed; materialisers are idempotent);
// otherwise the op is re-run (its transaction never committed). Every event
// is written to the outbox in the transaction that makes its change, and
// every step is fenced on the row's state (the committed_at stamp commits
// once), so each event exists exactly once. Why `applying` is written by
// step 2 rather than by the claim: see postgres.ClaimNext (it saves a
// synchronous commit per mutation).
//
// Side effects are fenced. A drainer that lost its lease (paused past it,
// partitioned) may still be in step 3 when another worker takes over; its
// database writes fail on the row's state, but a materializer call has no
// row to check. So every call carries the fence, and the materializer
// refuses a call whose fence is below the highest it has seen for the
// topology (package materializer says how implementations do that): once
// the new holder has made a call, the old one can make none, and no call for
// mutation N lands after one for N+1. A refused call, or a failed local
// check, stops the pass with nothing more written; the new holder recovers
// the mutation.
//
// A teardown (postgres.BeginTeardown) takes the lease from the drainer with
// a higher fence and, in the same transaction as the status change, ends
// every open mutation (op not committed → failed; committed → applied). The
// drainer's later steps then find nothing to do: the stamp, finish and fail
// are fenced on the row's state, which is terminal, so no decky is marked
// running and no event is written for a topology that left the live states;
// its materializer calls carry a fence below the teardown's and are refused
// once Teardown has been called.
//
// Lease writes and the claim commit asynchronously (see postgres.ClaimNext);
// the op and terminal commits are synchronous, and events are handed to the
// relay only after their commit returns. The pass does not wait for them to
// reach Redis (relay.Relay.Notify: the process's publishing loop stamps and
// appends them, sharing rounds across mutations and topologies); Drain waits
// for one relay round at its end, and whatever that round could not do, the
// sweep does from the outbox. A raised fence is made durable by a
// synchronous commit before any call carries it (the op's commit, or
// postgres.ConfirmDrainLease before re-materialising), so a Postgres crash
// cannot hand one fence to two holders.

// DefaultDrainLease is how long a drain lease lasts without renewal: the
// longest a dead worker can block its topology (SYSTEM §3.2 allows 30 s).
// Deploys and teardowns hold their lease for as long.
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
	total := 0
	defer func() {
		if total > 0 {
			w.flushRelay(ctx)
		}
	}()
	for {
		n, stopped, err := w.drainOnce(ctx, topologyID)
		total += n
		if err != nil || stopped || n == 0 {
			return err
		}
	}
}

// drainOnce runs one pass as a new lease holder. It returns how many
// mutations reached a terminal state and whether the pass stopped early (a
// failure, a lost lease or fencing); n=0 and stopped=true also mean "someone
// else holds the lease, or there is nothing to do".
func (w *Worker) drainOnce(ctx context.Context, tid string) (n int, stopped bool, err error) {
	lease := w.newLease(tid)
	// The first claim takes the lease; only then is there anything to renew
	// or release.
	sent := lease.now()
	m, claimed, err := w.DB.ClaimNext(ctx, tid, lease.owner, lease.ttl)
	if err != nil || m == nil {
		return 0, true, err
	}
	lease.claimed(sent, m.Fence)
	passCtx, stop := w.keepLease(ctx, lease)
	n, stopped, err = w.drainPass(passCtx, lease, m, claimed)
	stop()
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	if rerr := w.DB.ReleaseDrainLease(relCtx, tid, lease.owner); rerr != nil {
		w.log().WarnContext(ctx, "drain lease not released; it expires", "topology_id", tid, "err", rerr)
	}
	if errors.Is(err, errLeaseLost) || (err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled)) {
		// Our lease was lost mid-pass; the new holder carries on.
		w.log().InfoContext(ctx, "drain pass stopped: lease lost", "topology_id", tid)
		return n, true, nil
	}
	return n, stopped, err
}

// claimed records a claim's lease: ClaimNext either took the lease for its
// full ttl or kept one with more than half of it left, so the lease is ours
// until at least sent+ttl/2.
func (l *heldLease) claimed(sent time.Time, fence int64) { l.extend(sent, l.ttl/2, fence) }

// drainPass applies open mutations while it holds the lease, starting with
// m (claimed by drainOnce, or already applying when claimed is false).
func (w *Worker) drainPass(ctx context.Context, lease *heldLease, m *postgres.OpenMutation, claimed bool) (n int, stopped bool, err error) {
	tid := lease.tid
	// view is the topology as the pass's last op left it (nil: the next op
	// loads it); see postgres.CommitMutationOn.
	var view *domain.Hydrated
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return n, true, err
		}
		if !first {
			sent := lease.now()
			if m, claimed, err = w.DB.ClaimNext(ctx, tid, lease.owner, lease.ttl); err != nil || m == nil {
				return n, err != nil, err
			}
			if m.Fence != lease.Fence() {
				// Someone else held the lease in between (every take
				// raises the fence): what they wrote is not in view.
				view = nil
			}
			lease.claimed(sent, m.Fence)
		}
		log := w.log().With("topology_id", tid, "mutation_id", m.ID, "op", m.Op)
		if !claimed {
			if m.State != domain.MutationApplying {
				return n, true, nil // not ours to take: stop
			}
			log.InfoContext(ctx, "recovering a mutation left applying", "committed", m.CommittedAt != nil)
		}
		if m.CommittedAt != nil {
			view = nil
			running, err := w.rematerialize(ctx, log, lease, m)
			if err != nil {
				return n, true, err
			}
			if err := w.finish(ctx, log, &m.Mutation, running); err != nil {
				return n, true, err
			}
			n++
			continue
		}
		c, err := w.DB.CommitMutationOn(ctx, &m.Mutation, uuid.NewString, view)
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
		view = c.View
		w.announce(c.Events...)
		if c.Applied {
			mutationsTotal.WithLabelValues("applied").Inc()
			mutationLatency.Observe(c.Age)
			n++
			continue
		}
		var running []string
		if c.Materialize {
			s := materializer.Scope{Topology: &c.After.Topology, Fence: m.Fence, MutationID: m.ID, Seq: m.Seq}
			if running, err = w.materialize(ctx, log, lease, s, c.Effects); err != nil {
				return n, true, err
			}
		}
		if err := w.finish(ctx, log, &m.Mutation, running); err != nil {
			return n, true, err
		}
		postgres.MarkRunning(view, running)
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
	w.announce(ev)
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
	w.announce(evs...)
	return nil
}

// rematerialize re-runs the stored effects of a mutation whose op committed
// before its worker died, and returns the deckies whose spawn succeeded. No
// synchronous commit preceded this side effect in this pass, so it first
// confirms the lease synchronously (postgres.ConfirmDrainLease), which makes
// the pass's fence durable and re-reads the topology.
func (w *Worker) rematerialize(ctx context.Context, log *slog.Logger, lease *heldLease, m *postgres.OpenMutation) ([]string, error) {
	if len(m.Effects) == 0 {
		return nil, nil
	}
	sent := lease.now()
	t, err := w.DB.ConfirmDrainLease(ctx, m.TopologyID, lease.owner, m.Fence, lease.ttl)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errLeaseLost
	}
	lease.taken(sent, m.Fence)
	if t.Mode != domain.ModeUnihost {
		return nil, nil
	}
	s := materializer.Scope{Topology: t, Fence: m.Fence, MutationID: m.ID, Seq: m.Seq}
	return w.materialize(ctx, log, lease, s, m.Effects)
}

// materialize makes an op's materializer calls in order (DOMAIN §15), each
// under scope s (its fence, mutation id and seq) and after a local check of
// the lease. Each call gets the LAN and decky snapshots its effect carries
// (domain.ResolveEffects), never objects looked up now; an effect stored
// before snapshots existed gets a bare object with only its name. Errors are
// logged and never fail the mutation, except a lost lease: a failed check or
// a call refused by fence (materializer.ErrFenced) returns errLeaseLost at
// once, and the caller must stop without finishing the mutation. It returns
// the uuids of the deckies whose Spawn succeeded: finish marks them running
// with the mutation.
func (w *Worker) materialize(ctx context.Context, log *slog.Logger, lease *heldLease, s materializer.Scope, effects []domain.Effect) (running []string, err error) {
	mat := w.materializer()
	for _, e := range effects {
		if err := lease.check(ctx); err != nil {
			return nil, err
		}
		lan := e.LANSnapshot
		if lan == nil {
			lan = &domain.LAN{TopologyID: s.Topology.ID, Name: e.LAN}
		}
		decky := e.DeckySnapshot
		if decky == nil {
			decky = &domain.Decky{TopologyID: s.Topology.ID, Name: e.Decky}
		}
		var err error
		switch e.Call {
		case domain.CallCreateNetwork:
			err = mat.CreateNetwork(ctx, s, lan)
		case domain.CallRemoveNetwork:
			err = mat.RemoveNetwork(ctx, s, lan)
		case domain.CallSpawn:
			var ok bool
			if ok, err = mat.Spawn(ctx, s, decky); ok && decky.UUID != "" {
				running = append(running, decky.UUID)
			}
		case domain.CallRemove:
			err = mat.Remove(ctx, s, decky)
		case domain.CallConnect:
			err = mat.Connect(ctx, s, decky, lan, e.IP)
		case domain.CallDisconnect:
			err = mat.Disconnect(ctx, s, decky, lan)
		case domain.CallServicesDiff:
			err = mat.ServicesDiff(ctx, s, decky, e.Added, e.Removed)
		case domain.CallRecreateBase:
			err = mat.RecreateBase(ctx, s, decky)
		default:
			log.WarnContext(ctx, "unknown materializer call skipped", "call", e.Call)
		}
		if errors.Is(err, materializer.ErrFenced) {
			log.WarnContext(ctx, "materializer refused the call: a newer lease holder has acted; stopping",
				"call", e.Call, "fence", s.Fence)
			return nil, errLeaseLost
		}
		if err != nil {
			log.WarnContext(ctx, "materializer call failed; the database stays the source of truth",
				"call", e.Call, "lan", e.LAN, "decky", e.Decky, "err", err)
		}
	}
	return running, nil
}
