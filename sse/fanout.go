package sse

import (
	"runtime"
	"sync"
)

// The live write path (issue 9). A stream whose client keeps up is written
// by a few writer goroutines shared by the whole process, not by its own
// goroutine: dispatch hands every subscription that has frames waiting (and
// is not already being written) to the writers, and a writer takes
// everything the subscription has waiting and writes it with one
// non-blocking write(2) of bytes encoded once for all subscribers. No
// goroutine is woken per frame per subscriber, and a writer that falls
// behind finds more frames per subscription, so batches grow with the load
// (as Centrifugo's do). A socket that would block is handed back to its
// session's goroutine, which finishes the write under the write deadline
// (the slow path, as before this change); meanwhile the frames keep
// queueing in the subscription's bounded buffer, and a client that stays
// behind is dropped, never waited for.
//
// Exactly one party may write to a stream at a time; subscription.owner
// says which (see its states), and it changes hands only under
// subscription.mu.

// writerBatch is a group of subscriptions handed to one writer at once, so a
// dispatch to thousands of subscribers costs a channel send per batch, not
// per subscriber.
type writerBatch struct {
	subs [64]*subscription
	n    int
}

var (
	writersOnce sync.Once
	// writerWork is the writers' queue. A subscription is in it at most once
	// (owner == ownedByWriter), so its capacity covers 262,144 streams with
	// writers that never caught up; past that a dispatch waits for them.
	writerWork chan *writerBatch
	// writerBatches recycles batches.
	writerBatches = sync.Pool{New: func() any { return new(writerBatch) }}
)

// startWriters starts the process's writers once: one per CPU, since a
// writer never blocks (a socket that would block goes back to its session).
func startWriters() {
	writersOnce.Do(func() {
		writerWork = make(chan *writerBatch, 4096)
		for range max(2, runtime.GOMAXPROCS(0)) {
			go writer()
		}
	})
}

// writer writes the subscriptions handed to it until the process ends. buf
// is its own encoding buffer, reused for every write.
func writer() {
	var buf []byte
	for b := range writerWork {
		for _, s := range b.subs[:b.n] {
			buf = s.writeWaiting(buf)
		}
		clear(b.subs[:b.n])
		b.n = 0
		writerBatches.Put(b)
		if cap(buf) > maxPooledWrite {
			buf = nil // a burst is over
		}
	}
}

// schedule collects subscriptions for the writers; flush hands them over.
// It is used under Hub.mu by dispatch, or by a session giving its stream
// back, and is not safe for concurrent use.
type schedule struct{ b *writerBatch }

func (q *schedule) add(s *subscription) {
	if q.b == nil {
		q.b = writerBatches.Get().(*writerBatch)
	}
	q.b.subs[q.b.n] = s
	q.b.n++
	if q.b.n == len(q.b.subs) {
		q.flush()
	}
}

func (q *schedule) flush() {
	if q.b == nil {
		return
	}
	startWriters()
	writerWork <- q.b
	q.b = nil
}

// writeWaiting writes what s has waiting, as the writer that owns it, until
// nothing is left; then s is idle again (the next frame schedules it). When
// the socket would block (or fails), the bytes not written are kept in
// s.pending and s goes back to its session, which writes them under the
// write deadline; so does a subscription that ended or whose session asked
// for it back. buf is the writer's buffer; the grown buffer is returned.
func (s *subscription) writeWaiting(buf []byte) []byte {
	for {
		s.mu.Lock()
		if s.closed || s.wantBack {
			s.toSession()
			s.mu.Unlock()
			s.wake()
			return buf
		}
		frames := s.buf
		if len(frames) == 0 {
			s.owner = ownedByNone
			s.mu.Unlock()
			return buf
		}
		s.buf = s.spare[:0]
		s.spare = nil
		s.mu.Unlock()

		var data []byte
		data, buf = s.encode(frames, buf)
		s.recycle(frames)
		if len(data) == 0 {
			continue
		}
		n, err := s.fast.tryWrite(data)
		if err != nil || n < len(data) {
			s.pending = append(s.pending[:0], data[n:]...)
			s.mu.Lock()
			s.toSession()
			s.mu.Unlock()
			s.wake()
			return buf
		}
		s.wrote()
	}
}
