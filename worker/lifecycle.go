package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/tasks"
)

// lifecycleFinishTimeout bounds the final status write of a deploy or
// teardown. It runs on a context detached from the task's, so a task that
// timed out or a worker shutting down still records the outcome instead of
// leaving the topology in deploying / tearing_down.
const lifecycleFinishTimeout = 15 * time.Second

// maxReasonLen caps the materializer error text stored as a status reason.
const maxReasonLen = 500

// handleDeploy deploys a pending topology (DOMAIN §16):
//
//  1. Under the row lock: still pending, and the deploy-time validation of
//     DOMAIN §8.3 passes → pending→deploying, committed, `status` published.
//     A topology that fails validation stays pending with nothing written;
//     the issues are logged (the API already refused such a topology with
//     422 and the issues, so this only happens if it changed in between).
//     A topology that is gone or no longer pending (a duplicate task) is
//     skipped. None of these is a task failure.
//  2. Materializer.Deploy, unless mode=agent: agent-pinned topologies are
//     materialised by their agent, never here (DOMAIN §15), and go straight
//     to active.
//  3. deploying→active, or degraded ("some units unhealthy"), or failed with
//     the materializer's error as reason; committed, `status` published.
//     If the topology left deploying meanwhile (an operator tore it down)
//     the teardown wins: the outcome is dropped and, for unihost, Teardown is
//     called once more because Deploy may have created units after the
//     teardown's own cleanup (implementations are idempotent).
func (w *Worker) handleDeploy(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Parse(t)
	if err != nil {
		return err
	}
	log := w.log().With("topology_id", p.TopologyID, "task", t.Type())
	h, ev, err := w.DB.BeginDeploy(ctx, p.TopologyID)
	if err != nil {
		return w.lifecycleSkip(ctx, log, "deploy", err)
	}
	w.publish(ctx, ev)

	to, reason := domain.StatusActive, (*string)(nil)
	if h.Topology.Mode != domain.ModeAgent {
		degraded, derr := w.materializer().Deploy(ctx, h)
		switch {
		case derr != nil:
			to, reason = domain.StatusFailed, lifecycleReason("DeployError", derr)
			log.WarnContext(ctx, "deploy failed", "err", derr)
		case degraded:
			to, reason = domain.StatusDegraded, new("DeployError: some units are unhealthy after deploy")
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleFinishTimeout)
	defer cancel()
	ev, err = w.DB.TransitionStatus(fctx, p.TopologyID, to, reason)
	if domain.ErrorCode(err) == domain.EConflict || domain.ErrorCode(err) == domain.ENotFound {
		log.InfoContext(ctx, "deploy outcome dropped: topology left deploying meanwhile", "outcome", to, "err", err)
		if h.Topology.Mode != domain.ModeAgent && domain.ErrorCode(err) == domain.EConflict {
			if terr := w.materializer().Teardown(fctx, h); terr != nil {
				log.WarnContext(ctx, "cleanup after overtaken deploy", "err", terr)
			}
		}
		return nil
	} else if err != nil {
		return err
	}
	w.publish(ctx, ev)
	log.InfoContext(ctx, "deploy finished", "status", to)
	return nil
}

// handleTeardown tears a topology down (DOMAIN §16): under the row lock,
// active/degraded/failed/deploying → tearing_down (committed, published);
// then Materializer.Teardown unless mode=agent; then → torn_down, or →
// degraded with the error as reason when the materializer fails (the machine
// allows it; the topology can then be torn down again). torn_down releases
// the topology's subnets: the reserved set excludes torn_down topologies.
// A topology that is gone or not in a teardown-able status (a duplicate
// task) is skipped.
func (w *Worker) handleTeardown(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.Parse(t)
	if err != nil {
		return err
	}
	log := w.log().With("topology_id", p.TopologyID, "task", t.Type())
	h, ev, err := w.DB.BeginTeardown(ctx, p.TopologyID)
	if err != nil {
		return w.lifecycleSkip(ctx, log, "teardown", err)
	}
	w.publish(ctx, ev)

	to, reason := domain.StatusTornDown, (*string)(nil)
	if h.Topology.Mode != domain.ModeAgent {
		if terr := w.materializer().Teardown(ctx, h); terr != nil {
			to, reason = domain.StatusDegraded, lifecycleReason("TeardownError", terr)
			log.WarnContext(ctx, "teardown failed", "err", terr)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycleFinishTimeout)
	defer cancel()
	ev, err = w.DB.TransitionStatus(fctx, p.TopologyID, to, reason)
	if domain.ErrorCode(err) == domain.EConflict || domain.ErrorCode(err) == domain.ENotFound {
		log.InfoContext(ctx, "teardown outcome dropped: topology changed meanwhile", "outcome", to, "err", err)
		return nil
	} else if err != nil {
		return err
	}
	w.publish(ctx, ev)
	log.InfoContext(ctx, "teardown finished", "status", to)
	return nil
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
