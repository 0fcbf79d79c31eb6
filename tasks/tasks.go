// Package tasks is the asynq contract between the api and the worker: task
// type names, payloads and constructors, and the coalesced apply wake-up
// (Wakeups) both sides of that contract rely on.
package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// Task type names.
const (
	// TypeApply drains a topology's pending mutations in seq order.
	TypeApply = "topology:apply"
	// TypeDeploy validates and deploys a pending topology.
	TypeDeploy = "topology:deploy"
	// TypeTeardown tears a topology down.
	TypeTeardown = "topology:teardown"
)

// DefaultQueue is the asynq queue every task goes to in production; tests use
// their own queue name so they never meet a running `make run`.
const DefaultQueue = "mazenet"

// TopologyPayload names the topology a task is about. Tasks carry no state:
// the database is the source of truth, so a duplicated or lost task is harmless.
type TopologyPayload struct {
	TopologyID string `json:"topology_id"`
}

// LifecycleRetries is how many times asynq retries a deploy or teardown
// task that returned an error (with its backoff, over several minutes).
const LifecycleRetries = 5

// New returns a task of type typ for topology tid on queue. Apply tasks are
// only wake-ups and are not retried by asynq: the periodic sweep
// re-dispatches stranded work. Deploy and teardown tasks are retried
// (LifecycleRetries) when they fail before their start commits (the
// database was unreachable), because nothing else would start them; once
// started, a deploy or teardown whose worker dies is resumed by the sweep,
// and a retried task finds its topology no longer pending or teardown-able
// and is skipped.
func New(typ, tid, queue string) *asynq.Task {
	body, _ := json.Marshal(TopologyPayload{TopologyID: tid})
	retries := 0
	if typ == TypeDeploy || typ == TypeTeardown {
		retries = LifecycleRetries
	}
	return asynq.NewTask(typ, body, asynq.Queue(queue), asynq.MaxRetry(retries), asynq.Timeout(5*time.Minute))
}

// Parse decodes a task's payload.
func Parse(t *asynq.Task) (TopologyPayload, error) {
	var p TopologyPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TopologyID == "" {
		return p, fmt.Errorf("tasks: bad %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	return p, nil
}

// Enqueuer is the part of *asynq.Client that sends tasks.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Wakeups sends apply wake-ups coalesced per topology. Concurrent requests
// for one topology that arrive while a send for it is in flight share the
// one send that starts after it, so each caller still gets a task sent after
// its own call (the wake-up its commit needs) while a burst of enqueues to
// one topology costs two Redis scripts in flight at most instead of one per
// request. The zero value is ready to use.
type Wakeups struct {
	mu    sync.Mutex
	state map[string]*wakeState
}

type wakeState struct {
	running bool
	next    *wakeSend // the send that starts after the running one
}

type wakeSend struct {
	done    chan struct{}
	err     error
	waiters int // callers sharing it (for tests and diagnostics)
}

// wakeTimeout bounds one coalesced send.
const wakeTimeout = 5 * time.Second

// Apply makes sure a TypeApply task for topology tid on queue is sent after
// this call, through e, and returns that send's error (or ctx's, if ctx ends
// first; the send still happens). Callers sharing a send share the enqueuer
// of the one that started it.
func (w *Wakeups) Apply(ctx context.Context, e Enqueuer, queue, tid string) error {
	key := queue + "\x00" + tid
	w.mu.Lock()
	if w.state == nil {
		w.state = map[string]*wakeState{}
	}
	st := w.state[key]
	if st == nil {
		st = &wakeState{}
		w.state[key] = st
	}
	if st.next == nil {
		st.next = &wakeSend{done: make(chan struct{})}
	}
	s := st.next
	s.waiters++
	if !st.running {
		st.running = true
		go w.run(key, st, e, queue, tid)
	}
	w.mu.Unlock()
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run sends while sends are asked for, one at a time.
func (w *Wakeups) run(key string, st *wakeState, e Enqueuer, queue, tid string) {
	for {
		w.mu.Lock()
		s := st.next
		st.next = nil
		if s == nil {
			st.running = false
			delete(w.state, key)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		_, s.err = e.EnqueueContext(ctx, New(TypeApply, tid, queue))
		cancel()
		close(s.done)
	}
}
