package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// errLeaseLost stops a drain pass or a deploy/teardown whose lease is gone
// (taken by a teardown or by a worker that found it expired) or may be gone
// (its local deadline passed while this worker was paused): it must make no
// further materializer call and write nothing more; the new holder carries
// on from the database.
var errLeaseLost = errors.New("worker: topology lease lost")

// heldLease is this worker's view of a topology lease it holds (the drain
// lease of a pass, or a deploy's or teardown's): its owner name, the fence
// (generation) every materializer call carries, and a local deadline before
// which the lease cannot have expired. The deadline is measured on this
// process's clock from the moment the statement that set the database
// deadline was sent, so it never runs past the database's own. It is the
// cheap check made before each materializer call; it catches a worker that
// was paused past its lease before the call is made, but not one paused
// between the check and the call, nor a teardown taking the lease early.
// The fence covers those: the materializer refuses a call whose fence is
// below the newest holder's.
type heldLease struct {
	tid, owner string
	ttl        time.Duration
	now        func() time.Time

	mu    sync.Mutex
	fence int64
	until time.Time
	lost  bool
}

// newLease names a new lease holder for topology tid: this worker's id and a
// random suffix, so every pass and every deploy or teardown is a distinct
// holder (and taking the lease raises the fence).
func (w *Worker) newLease(tid string) *heldLease {
	return &heldLease{tid: tid, owner: w.ID + "#" + uuid.NewString()[:8], ttl: w.drainLease(), now: w.clock()}
}

// taken records that the lease was taken or confirmed for ttl, with
// generation fence, by a statement sent at sent.
func (l *heldLease) taken(sent time.Time, fence int64) { l.extend(sent, l.ttl, fence) }

// extend moves the local deadline to sent+d if that is later, and records
// the lease's generation.
func (l *heldLease) extend(sent time.Time, d time.Duration, fence int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fence = fence
	if until := sent.Add(d); until.After(l.until) {
		l.until = until
	}
}

// Fence returns the lease's current generation.
func (l *heldLease) Fence() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fence
}

// check returns nil while the lease is certainly still held on this
// worker's clock and ctx is live; errLeaseLost when it was lost or its local
// deadline passed; ctx's error when ctx ended (shutdown).
func (l *heldLease) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		l.mu.Lock()
		lost := l.lost
		l.mu.Unlock()
		if lost {
			return errLeaseLost
		}
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost || !l.now().Before(l.until) {
		return errLeaseLost
	}
	return nil
}

// keepLease renews l every third of its ttl until the returned stop is
// called; the returned context ends when ctx does or when the lease turns
// out to be someone else's (then l.check reports errLeaseLost). stop waits
// for the renewal loop to end.
func (w *Worker) keepLease(ctx context.Context, l *heldLease) (context.Context, func()) {
	held, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
			}
			sent := l.now()
			ok, err := w.DB.RenewDrainLease(held, l.tid, l.owner, l.ttl)
			if err != nil {
				if held.Err() == nil {
					w.log().WarnContext(held, "lease renewal failed", "topology_id", l.tid, "err", err)
				}
				continue
			}
			if !ok {
				w.log().WarnContext(held, "lease lost; stopping", "topology_id", l.tid)
				l.mu.Lock()
				l.lost = true
				l.mu.Unlock()
				cancel()
				return
			}
			l.extend(sent, l.ttl, l.Fence())
		}
	}()
	return held, func() { cancel(); <-done }
}

// clock returns w.Now, or time.Now.
func (w *Worker) clock() func() time.Time {
	if w.Now != nil {
		return w.Now
	}
	return time.Now
}
