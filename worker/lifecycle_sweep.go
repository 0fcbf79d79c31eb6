package worker

import (
	"context"
	"fmt"
	"sync"

	"github.com/decnet/mazenet/internal/domain"
)

// maxLifecycleAttempts is how many times one deploy or teardown is started
// (once by its task, then once per sweep resume after its worker died or
// shut down) before the sweep gives up on it: a deploy that kills its
// worker every time must end, not loop. Giving up moves a deploy to failed
// and a teardown to degraded (the machine's failed-teardown edge; the
// operator can tear it down again), each with a reason.
const maxLifecycleAttempts = 3

// SweepLifecycle finishes the lifecycle work dead workers left (SYSTEM
// §3.8), within one lease plus one sweep interval: every deploy or
// teardown whose lease expired is resumed (ResumeLifecycle takes the lease
// with a new fence, then Deploy or Teardown runs again to its outcome) or,
// past maxLifecycleAttempts, given up on; and mutations still open on a
// topology outside the live states (left by an older version) are ended.
// Every step publishes its events through the relay. It returns the first
// error and still does the rest.
func (w *Worker) SweepLifecycle(ctx context.Context) error {
	var mu sync.Mutex
	var firstErr error
	keep := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	evs, err := w.DB.EndOrphanedMutations(ctx, strandedBatch)
	w.publishLifecycle(ctx, evs...)
	keep(err)
	tids, err := w.DB.StrandedLifecycles(ctx, strandedBatch)
	keep(err)
	var wg sync.WaitGroup
	sem := make(chan struct{}, sweepParallel)
	for _, tid := range tids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.resumeLifecycle(ctx, tid); err != nil {
				keep(fmt.Errorf("resume %s: %w", tid, err))
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// resumeLifecycle takes over one abandoned deploy or teardown, if it is
// still abandoned, and runs it to its outcome (or gives up on it).
func (w *Worker) resumeLifecycle(ctx context.Context, tid string) error {
	lease := w.newLease(tid)
	sent := lease.now()
	l, err := w.DB.ResumeLifecycle(ctx, tid, lease.owner, lease.ttl)
	if err != nil || l == nil {
		return err
	}
	lease.taken(sent, l.Fence)
	w.publishLifecycle(ctx, l.Events...)
	from := l.View.Topology.Status
	log := w.log().With("topology_id", tid, "status", from, "attempt", l.Attempt)
	if l.Attempt > maxLifecycleAttempts {
		to, category := domain.StatusFailed, "DeployError"
		if from == domain.StatusTearingDown {
			to, category = domain.StatusDegraded, "TeardownError"
		}
		reason := fmt.Sprintf("%s: gave up after %d attempts; each time the worker stopped before finishing",
			category, maxLifecycleAttempts)
		log.WarnContext(ctx, "abandoned lifecycle work given up", "outcome", to)
		return w.finishLifecycle(ctx, log, lease, from, to, &reason)
	}
	log.InfoContext(ctx, "resuming abandoned lifecycle work")
	if from == domain.StatusDeploying {
		return w.deploy(ctx, log, lease, l)
	}
	return w.teardown(ctx, log, lease, l)
}
