package api

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/tasks"
)

// blockingEnqueuer records every task and blocks each send until released.
type blockingEnqueuer struct {
	started chan struct{}
	release chan struct{}
	err     error

	mu   sync.Mutex
	sent []string
}

func (e *blockingEnqueuer) EnqueueContext(_ context.Context, t *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	p, err := tasks.Parse(t)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.sent = append(e.sent, t.Type()+" "+p.TopologyID)
	e.mu.Unlock()
	e.started <- struct{}{}
	<-e.release
	return nil, e.err
}

// waiting counts the callers registered for the send after the running one.
func (w *wakeups) waiting(queue, tid string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.state[queue+"\x00"+tid]
	if st == nil || st.next == nil {
		return 0
	}
	return st.next.waiters
}

// Callers that arrive while a wake-up of their topology is in flight share
// the one send that starts after it: 1 + 10 callers cost 2 sends, each
// caller returns only after a send that started after its call, and the
// send's error reaches every caller that shared it. Another topology is not
// held up.
func TestWakeupsCoalescePerTopology(t *testing.T) {
	t.Parallel()
	e := &blockingEnqueuer{started: make(chan struct{}), release: make(chan struct{}), err: errors.New("redis is down")}
	var w wakeups
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { first <- w.apply(ctx, e, "q", "t1") }()
	<-e.started // the first send is in flight

	const n = 10
	rest := make(chan error, n)
	for range n {
		go func() { rest <- w.apply(ctx, e, "q", "t1") }()
	}
	require.Eventually(t, func() bool { return w.waiting("q", "t1") == n }, 10*time.Second, time.Millisecond)
	select {
	case <-rest:
		t.Fatal("a caller returned before a send that started after its call")
	default:
	}

	other := make(chan error, 1)
	go func() { other <- w.apply(ctx, e, "q", "t2") }()
	<-e.started // t2's send starts while t1's is still in flight
	e.release <- struct{}{}
	e.release <- struct{}{}
	require.ErrorIs(t, <-first, e.err)
	require.ErrorIs(t, <-other, e.err)

	<-e.started // the one shared send
	e.release <- struct{}{}
	for range n {
		require.ErrorIs(t, <-rest, e.err)
	}
	require.ElementsMatch(t, []string{tasks.TypeApply + " t1", tasks.TypeApply + " t2", tasks.TypeApply + " t1"}, e.sent)
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.state) == 0
	}, 10*time.Second, time.Millisecond, "idle topologies leave no state behind")
}

// A caller whose context ends returns its context's error; the send still
// happens for the others.
func TestWakeupsCallerContext(t *testing.T) {
	t.Parallel()
	e := &blockingEnqueuer{started: make(chan struct{}), release: make(chan struct{})}
	var w wakeups
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.apply(ctx, e, "q", "t1") }()
	<-e.started
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	e.release <- struct{}{}
	require.Equal(t, []string{tasks.TypeApply + " t1"}, e.sent)
}
