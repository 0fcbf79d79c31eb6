package api

import (
	"context"
	"sync"
	"time"

	"github.com/decnet/mazenet/tasks"
)

// wakeups sends apply wake-ups coalesced per topology. Concurrent requests
// for one topology that arrive while a send for it is in flight share the
// one send that starts after it, so each caller still gets a task sent after
// its own call (the wake-up its commit needs) while a burst of enqueues to
// one topology costs two Redis scripts in flight at most instead of one per
// request. The zero value is ready to use.
type wakeups struct {
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

// apply makes sure a tasks.TypeApply task for topology tid on queue is sent after
// this call, through e, and returns that send's error (or ctx's, if ctx ends
// first; the send still happens). Callers sharing a send share the enqueuer
// of the one that started it.
func (w *wakeups) apply(ctx context.Context, e Enqueuer, queue, tid string) error {
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
func (w *wakeups) run(key string, st *wakeState, e Enqueuer, queue, tid string) {
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
		_, s.err = e.EnqueueContext(ctx, tasks.New(tasks.TypeApply, tid, queue))
		cancel()
		close(s.done)
	}
}
