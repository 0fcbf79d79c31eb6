package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// Deploy and teardown (DOMAIN §16, SYSTEM §3.8). Each runs in three steps:
//
//  1. start: one transaction moves the topology to deploying or tearing_down
//     and takes its lease (drain_owner, drain_until) with a new fence; a
//     teardown takes the lease from whoever held it (a drainer, a running
//     deploy) and ends every open mutation in that same transaction
//     (postgres.BeginTeardown);
//  2. materialise, unless mode=agent: Materializer.Deploy or Teardown,
//     carrying the fence, while the lease is renewed every third of its
//     duration;
//  3. finish: one transaction moves the topology to its outcome and frees the
//     lease, only if this worker still holds it (postgres.FinishLifecycle).
//
// Every step publishes its `status` event (D9). A worker that loses its
// lease (a teardown overtook its deploy, or it was paused so long that the
// sweep resumed its work) drops its outcome: its materializer calls are
// refused by fence and its finish writes nothing. A worker that dies
// between 1 and 3 leaves the topology deploying or tearing_down with a lease
// that expires (one shutting down frees it at once); the sweep then resumes
// it (SweepLifecycle):
// it takes the lease with a new fence, counts the attempt, and re-runs
// step 2 (Deploy and Teardown are idempotent) and 3, or gives up after
// maxLifecycleAttempts attempts.

// lifecycleFinishTimeout bounds the final status write of a deploy or
// teardown. It runs on a context detached from the task's, so a task that
// timed out still records the outcome its materializer call reached.
const lifecycleFinishTimeout = 15 * time.Second

// maxReasonLen caps the materializer error text stored as a status reason.
const maxReasonLen = 500

// handleDeploy deploys a pending topology (DOMAIN §16). Under the row lock
// the topology must still be pending and pass the deploy-time validation of
// DOMAIN §8.3; then pending→deploying (step 1 above). A topology that fails
// validation stays pending with nothing written and the issues logged (the
// API already refused such a topology with 422 and the issues, so this only
// happens if it changed in between); one that is gone or no longer pending
// (a duplicate task) is skipped. None of these is a task failure. Then
// deploy runs steps 2 and 3.
func (w *Worker) handleDeploy(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Parse(t)
	if err != nil {
		return err
	}
	log := w.log().With("topology_id", p.TopologyID, "task", t.Type())
	lease := w.newLease(p.TopologyID)
	sent := lease.now()
	l, err := w.DB.BeginDeploy(ctx, p.TopologyID, lease.owner, lease.ttl)
	if err != nil {
		return w.lifecycleSkip(ctx, log, "deploy", err)
	}
	lease.taken(sent, l.Fence)
	w.publishLifecycle(ctx, l.Events...)
	return w.deploy(ctx, log, lease, l)
}

// deploy runs a started (or resumed) deploy to its outcome: Materializer.
// Deploy unless mode=agent (agent-pinned topologies are materialised by
// their agent, never here, DOMAIN §15, and go straight to active); then
// deploying→active, or degraded ("some units unhealthy"), or failed with
// the materializer's error as reason.
func (w *Worker) deploy(ctx context.Context, log *slog.Logger, lease *heldLease, l *postgres.Lifecycle) error {
	to, reason := domain.StatusActive, (*string)(nil)
	if l.View.Topology.Mode != domain.ModeAgent {
		var degraded bool
		err := w.underLease(ctx, lease, func(ctx context.Context) (err error) {
			degraded, err = w.materializer().Deploy(ctx, lifecycleScope(l), l.View)
			return err
		})
		switch {
		case w.leftBehind(ctx, log, lease, "deploy", err):
			return nil
		case err != nil:
			to, reason = domain.StatusFailed, lifecycleReason("DeployError", err)
			log.WarnContext(ctx, "deploy failed", "err", err)
		case degraded:
			to, reason = domain.StatusDegraded, new("DeployError: some units are unhealthy after deploy")
		}
	}
	return w.finishLifecycle(ctx, log, lease, domain.StatusDeploying, to, reason)
}

// handleTeardown tears a topology down (DOMAIN §16): under the row lock,
// active/degraded/failed/deploying → tearing_down, the lease taken from any
// drainer or running deploy and every open mutation ended, all in one
// commit (postgres.BeginTeardown); then teardown runs steps 2 and 3. A
// topology that is gone or not in a teardown-able status (a duplicate task)
// is skipped.
func (w *Worker) handleTeardown(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Parse(t)
	if err != nil {
		return err
	}
	log := w.log().With("topology_id", p.TopologyID, "task", t.Type())
	lease := w.newLease(p.TopologyID)
	sent := lease.now()
	l, err := w.DB.BeginTeardown(ctx, p.TopologyID, lease.owner, lease.ttl)
	if err != nil {
		return w.lifecycleSkip(ctx, log, "teardown", err)
	}
	lease.taken(sent, l.Fence)
	w.publishLifecycle(ctx, l.Events...)
	return w.teardown(ctx, log, lease, l)
}

// teardown runs a started (or resumed) teardown to its outcome:
// Materializer.Teardown unless mode=agent, then → torn_down, or → degraded
// with the error as reason when the materializer fails (the machine allows
// it; the topology can then be torn down again). torn_down releases the
// topology's subnets: the reserved set excludes torn_down topologies.
func (w *Worker) teardown(ctx context.Context, log *slog.Logger, lease *heldLease, l *postgres.Lifecycle) error {
	to, reason := domain.StatusTornDown, (*string)(nil)
	if l.View.Topology.Mode != domain.ModeAgent {
		err := w.underLease(ctx, lease, func(ctx context.Context) error {
			return w.materializer().Teardown(ctx, lifecycleScope(l), l.View)
		})
		switch {
		case w.leftBehind(ctx, log, lease, "teardown", err):
			return nil
		case err != nil:
			to, reason = domain.StatusDegraded, lifecycleReason("TeardownError", err)
			log.WarnContext(ctx, "teardown failed", "err", err)
		}
	}
	return w.finishLifecycle(ctx, log, lease, domain.StatusTearingDown, to, reason)
}

// lifecycleScope is the materializer scope of a deploy or teardown: its
// topology and fence, no mutation.
func lifecycleScope(l *postgres.Lifecycle) materializer.Scope {
	return materializer.Scope{Topology: &l.View.Topology, Fence: l.Fence}
}

// underLease runs call after checking the lease, while renewing it; call's
// context ends when ctx does or when the lease turns out to be lost.
func (w *Worker) underLease(ctx context.Context, lease *heldLease, call func(context.Context) error) error {
	if err := lease.check(ctx); err != nil {
		return err
	}
	held, stop := w.keepLease(ctx, lease)
	defer stop()
	err := call(held)
	if cerr := lease.check(ctx); cerr != nil && err != nil {
		return cerr // the call failed because the lease was lost or ctx ended
	}
	return err
}

// leftBehind reports whether err means this worker must leave the deploy
// or teardown to someone else, logging why: its lease was lost or its call
// refused by fence (a teardown or a sweep resume took over: drop the
// outcome), or ctx ended (the worker is shutting down: the lease is freed so
// the sweep resumes the work without waiting for it to expire).
func (w *Worker) leftBehind(ctx context.Context, log *slog.Logger, lease *heldLease, action string, err error) bool {
	switch {
	case errors.Is(err, errLeaseLost), errors.Is(err, materializer.ErrFenced):
		log.InfoContext(ctx, action+" overtaken: another lease holder took over; outcome dropped", "err", err)
		return true
	case err != nil && ctx.Err() != nil:
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := w.DB.ReleaseDrainLease(rctx, lease.tid, lease.owner); rerr != nil {
			log.WarnContext(ctx, "lease not released; it expires", "err", rerr)
		}
		log.InfoContext(ctx, action+" interrupted; the sweep resumes it", "err", err)
		return true
	}
	return false
}

// finishLifecycle writes the outcome if this worker still holds the lease
// (postgres.FinishLifecycle) and publishes the status event; a lost lease or
// a topology that left the status meanwhile drops the outcome.
func (w *Worker) finishLifecycle(ctx context.Context, log *slog.Logger, lease *heldLease, from, to domain.Status, reason *string) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleFinishTimeout)
	defer cancel()
	ev, err := w.DB.FinishLifecycle(fctx, lease.tid, lease.owner, from, to, reason)
	switch {
	case errors.Is(err, postgres.ErrLeaseLost), domain.ErrorCode(err) == domain.ENotFound:
		log.InfoContext(ctx, string(from)+" outcome dropped: the topology changed hands meanwhile", "outcome", to, "err", err)
		return nil
	case err != nil:
		return err
	}
	w.publish(ctx, ev)
	log.InfoContext(ctx, string(from)+" finished", "status", to)
	return nil
}

// publishLifecycle publishes a lifecycle step's committed events and counts
// the mutations it ended (a teardown ends the open ones) in the outcome
// metric.
func (w *Worker) publishLifecycle(ctx context.Context, evs ...domain.Event) {
	for _, ev := range evs {
		switch ev.Name {
		case domain.EventApplied:
			mutationsTotal.WithLabelValues("applied").Inc()
		case domain.EventFailed:
			mutationsTotal.WithLabelValues("failed").Inc()
		}
	}
	w.publish(ctx, evs...)
}

// lifecycleSkip decides what a refused start means for the task: a missing
// topology, a status that no longer allows the action (duplicate or stale
// task) or failed validation are logged and end the task successfully,
// because running it again cannot help; anything else is returned.
func (w *Worker) lifecycleSkip(ctx context.Context, log *slog.Logger, action string, err error) error {
	var de *domain.Error
	if !errors.As(err, &de) || de.Code == domain.EInternal {
		return err
	}
	attrs := []any{"action", action, "detail", de.Message}
	if issues, ok := de.Fields["issues"].([]domain.Issue); ok {
		attrs = append(attrs, "issues", issues)
	}
	log.WarnContext(ctx, "lifecycle task skipped", attrs...)
	return nil
}

// lifecycleReason formats a status reason `<Category>: <message>`, capped so
// a verbose infrastructure error cannot bloat the audit log.
func lifecycleReason(category string, err error) *string {
	msg := err.Error()
	if len(msg) > maxReasonLen {
		msg = msg[:maxReasonLen] + "…"
	}
	return new(category + ": " + msg)
}
