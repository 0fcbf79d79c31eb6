package sse

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
)

// Hub defaults.
const (
	// DefaultBufferSize bounds the frames a subscriber may have waiting. A
	// subscriber that falls this far behind is dropped, never waited for.
	// It is four reader batches: a burst (the relay catching up after an
	// outage appends hundreds of entries at once) reaches subscribers one
	// batch per dispatch, and a client that keeps reading always has room.
	DefaultBufferSize = 1024
	// readerBlock is how long one XREAD waits for new entries; it also bounds
	// how long Run takes to notice its context ending.
	readerBlock = 2 * time.Second
	// maxReaderBatch is the most entries one XREAD (or one page of a fill
	// from the outbox) returns; the hub uses at most half the buffer size, so
	// one dispatch can never overflow an empty subscriber buffer.
	maxReaderBatch = 256
)

// Reasons the hub ends a subscription.
var (
	// errSlowClient: the subscriber's buffer was full. Its client reconnects
	// with Last-Event-ID and resumes from the outbox.
	errSlowClient = errors.New("sse: subscriber too slow")
	// errStreamGap: positions the shared reader skipped are gone from the
	// outbox too (pruned, or their topology deleted), so no live subscriber
	// can be told it saw everything. They reconnect and resume, which tells
	// each exactly what retention dropped.
	errStreamGap = errors.New("sse: shared reader missed events that are no longer retained")
)

// frame is one stream entry rendered once as SSE bytes
// (`id:`/`event:`/`data:`) and shared, read-only, by every subscriber.
type frame struct {
	id         stream.ID
	topologyID string
	bytes      []byte
}

// newFrame renders e, live or replayed: both paths render the same decoded
// form (stream.Entry), so a replayed frame is the live frame. The envelope is
// compact JSON and has no line breaks; should a producer ever send one, each
// line becomes its own `data:` line so the frame cannot be split or forged.
func newFrame(e stream.Entry) *frame {
	id := e.ID.String()
	var b strings.Builder
	b.Grow(len(id) + len(e.Name) + len(e.Data) + 24)
	b.WriteString("id: ")
	b.WriteString(id)
	b.WriteString("\nevent: ")
	b.WriteString(strings.NewReplacer("\r", "", "\n", "").Replace(e.Name))
	for _, line := range strings.Split(strings.ReplaceAll(e.Data, "\r\n", "\n"), "\n") {
		b.WriteString("\ndata: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
	}
	b.WriteString("\n\n")
	return &frame{id: e.ID, topologyID: e.TopologyID, bytes: []byte(b.String())}
}

// Hub is the process's one shared reader of the event stream and its
// in-memory fan-out (SYSTEM §4). Whatever the number of clients and
// topologies, the process tails Redis on one connection; each subscriber gets
// a bounded buffer, and one that is full is dropped instead of blocking the
// reader or the other subscribers (the benbjohnson/wtf inmem event model).
//
// Event ids are durable and gap-free positions (internal/stream), so the
// reader knows exactly what it is owed: after the event at gseq g comes
// g+1. A jump (Redis lost entries, the relay skipped what Redis would trim
// anyway, the reader was cut off longer than the stream's retention) is
// filled from the outbox before the entry after it is fanned out; only when
// the outbox no longer has the missing events does every subscription end
// (errStreamGap), and each client resumes exactly from its last id.
type Hub struct {
	db         *postgres.DB
	streams    *stream.Streams
	log        *slog.Logger
	bufferSize int
	batch      int64 // entries per XREAD and per outbox page
	metrics    *metrics

	ready chan struct{} // closed once last is known

	mu       sync.Mutex
	last     stream.ID // position: every event up to it has been fanned out
	topics   map[string]map[*subscription]struct{}
	overview map[*subscription]struct{}
}

// newHub returns a hub; Run starts its reader.
func newHub(db *postgres.DB, streams *stream.Streams, log *slog.Logger, bufferSize int, m *metrics) *Hub {
	if bufferSize <= 0 {
		bufferSize = DefaultBufferSize
	}
	return &Hub{
		db: db, streams: streams, log: log, bufferSize: bufferSize, metrics: m,
		batch:    int64(max(1, min(maxReaderBatch, bufferSize/2))),
		ready:    make(chan struct{}),
		topics:   map[string]map[*subscription]struct{}{},
		overview: map[*subscription]struct{}{},
	}
}

// subscription is one client's view of the hub: frames waiting to be
// written, a wake-up signal, and the reason if the hub dropped it. The buffer
// grows on demand, so an idle subscription costs a few hundred bytes.
type subscription struct {
	hub        *Hub
	topologyID string // "" for the overview stream: every topology

	notify chan struct{} // capacity 1: "look again" (see wake)

	lastWrite    atomic.Int64 // unix nanos of the last write to the client
	keepaliveDue atomic.Bool  // set by the keepalive sweep; the handler sends one

	mu     sync.Mutex
	buf    []*frame
	closed bool
	why    error
}

// Subscribe registers a subscriber for topologyID ("" = every topology) and
// returns it with the hub's position: every entry after that position will
// be offered to the subscriber, none before it. Registration and position are
// taken under the lock the reader fans out under, so nothing falls between.
func (h *Hub) Subscribe(topologyID string) (*subscription, stream.ID) {
	sub := &subscription{hub: h, topologyID: topologyID, notify: make(chan struct{}, 1)}
	sub.wrote()
	h.mu.Lock()
	defer h.mu.Unlock()
	if topologyID == "" {
		h.overview[sub] = struct{}{}
	} else {
		subs := h.topics[topologyID]
		if subs == nil {
			subs = map[*subscription]struct{}{}
			h.topics[topologyID] = subs
		}
		subs[sub] = struct{}{}
	}
	return sub, h.last
}

// Close unregisters the subscription; it is safe to call more than once and
// after the hub dropped it.
func (s *subscription) Close() {
	s.hub.mu.Lock()
	s.hub.remove(s)
	s.hub.mu.Unlock()
	s.end(nil)
}

// Err returns why the hub dropped the subscription (nil if it did not).
func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

// take returns the waiting frames and hands spare back as the next buffer,
// so a busy subscriber swaps two slices instead of allocating.
func (s *subscription) take(spare []*frame) []*frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.buf
	s.buf = spare[:0]
	return out
}

// offer queues f without blocking; it reports false when the buffer is full,
// and the caller then drops the subscription.
func (s *subscription) offer(f *frame, limit int) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true
	}
	if len(s.buf) >= limit {
		s.mu.Unlock()
		return false
	}
	s.buf = append(s.buf, f)
	s.mu.Unlock()
	s.wake()
	return true
}

// wake tells the subscription's handler to look at it again: new frames, or
// a reason to stop (the hub dropped it, its client left, its slot was lost,
// the server is draining).
func (s *subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// end marks the subscription finished; a non-nil why is reported to its
// handler (Err) and wakes it.
func (s *subscription) end(why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.buf = true, nil
	if why != nil {
		s.why = why
		s.wake()
	}
}

// remove unregisters s; h.mu must be held.
func (h *Hub) remove(s *subscription) {
	if s.topologyID == "" {
		delete(h.overview, s)
		return
	}
	if subs := h.topics[s.topologyID]; subs != nil {
		delete(subs, s)
		if len(subs) == 0 {
			delete(h.topics, s.topologyID)
		}
	}
}

// drop ends a subscription from the reader's side; h.mu must be held.
func (h *Hub) drop(s *subscription, why error) {
	h.remove(s)
	s.end(why)
	if errors.Is(why, errSlowClient) {
		h.metrics.slowDrop()
	}
}

// dispatch fans a batch out. It never blocks on a subscriber.
func (h *Hub) dispatch(entries []stream.Entry) {
	if len(entries) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var delivered int
	for _, e := range entries {
		f := newFrame(e)
		for sub := range h.topics[f.topologyID] {
			if sub.offer(f, h.bufferSize) {
				delivered++
			} else {
				h.drop(sub, errSlowClient)
			}
		}
		for sub := range h.overview {
			if sub.offer(f, h.bufferSize) {
				delivered++
			} else {
				h.drop(sub, errSlowClient)
			}
		}
		h.last = f.id
	}
	h.metrics.fannedOut.Add(float64(delivered))
}

// wrote records a write to the client (it resets the keepalive clock).
func (s *subscription) wrote() { s.lastWrite.Store(time.Now().UnixNano()) }

// keepalives marks every subscription silent for at least idle as owing a
// keepalive, and wakes it. One sweep for the whole process replaces a timer
// per client, and the per-frame path never touches a timer.
func (h *Hub) keepalives(idle time.Duration) {
	cutoff := time.Now().Add(-idle).UnixNano()
	h.mu.Lock()
	defer h.mu.Unlock()
	due := func(sub *subscription) {
		if sub.lastWrite.Load() <= cutoff {
			sub.keepaliveDue.Store(true)
			sub.wake()
		}
	}
	for _, subs := range h.topics {
		for sub := range subs {
			due(sub)
		}
	}
	for sub := range h.overview {
		due(sub)
	}
}

// wakeAll wakes every subscription (the server is draining).
func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.topics {
		for sub := range subs {
			sub.wake()
		}
	}
	for sub := range h.overview {
		sub.wake()
	}
}

// dropAllLocked ends every subscription with why; h.mu must be held.
func (h *Hub) dropAllLocked(why error) {
	for _, subs := range h.topics {
		for sub := range subs {
			h.drop(sub, why)
		}
	}
	for sub := range h.overview {
		h.drop(sub, why)
	}
}

// Ready reports whether the reader knows its starting position; until then
// a handshake cannot capture a position and is refused.
func (h *Hub) Ready() bool {
	select {
	case <-h.ready:
		return true
	default:
		return false
	}
}

// waitReady waits up to d for Ready.
func (h *Hub) waitReady(ctx context.Context, d time.Duration) bool {
	if h.Ready() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Run is the shared reader. It starts at the outbox clock (every event up
// to it is committed, so a handshake can replay it from Postgres), then
// XREADs (BLOCK) after its position and fans out, until ctx ends. On an
// error it backs off and reads again after its position, so a Redis that
// restarted empty or was restored from an older snapshot is simply read past
// what the reader already has once the relay has refilled it.
func (h *Hub) Run(ctx context.Context) error {
	var bo backoff
	for {
		clock, err := h.db.EventClock(ctx)
		if err == nil {
			h.mu.Lock()
			h.last = stream.AfterGSeq(clock.GSeq)
			h.mu.Unlock()
			close(h.ready)
			break
		}
		h.log.WarnContext(ctx, "sse reader: start position", "err", err)
		if !bo.wait(ctx) {
			return nil
		}
	}
	bo.reset()
	for ctx.Err() == nil {
		h.mu.Lock()
		last := h.last
		h.mu.Unlock()
		entries, err := h.streams.ReadAll(ctx, last, readerBlock, h.batch)
		if err == nil && len(entries) > 0 {
			err = h.deliver(ctx, last, entries)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.metrics.readerErrors.Inc()
			h.log.WarnContext(ctx, "sse reader: read", "err", err)
			if !bo.wait(ctx) {
				return nil
			}
			continue
		}
		bo.reset()
	}
	return nil
}

// deliver fans entries (read after last) out in position order. Before an
// entry whose gseq jumps past last+1 it fans out the missing positions from
// the outbox; when the outbox cannot supply all of them it ends every
// subscription and moves on. An error leaves the position after what was
// fanned out, so the next read continues there.
func (h *Hub) deliver(ctx context.Context, last stream.ID, entries []stream.Entry) error {
	run := entries[:0:0]
	for _, e := range entries {
		if e.ID.GSeq <= last.GSeq {
			continue // at or below the position (the start position is a clock)
		}
		if e.ID.GSeq > last.GSeq+1 {
			h.dispatch(run)
			run = run[:0]
			if err := h.fill(ctx, last.GSeq, e.ID.GSeq); err != nil {
				return err
			}
		}
		run = append(run, e)
		last = e.ID
	}
	h.dispatch(run)
	return nil
}

// fill fans out the events with after < gseq < next from the outbox, one
// batch at a time. If one is missing, every subscription ends (errStreamGap)
// and the position moves to just before next.
func (h *Hub) fill(ctx context.Context, after, next int64) error {
	h.metrics.readerFills.Inc()
	for after < next-1 {
		evs, err := h.db.EventsByGSeq(ctx, after, next-1, int(h.batch))
		if err != nil {
			return err
		}
		run := make([]stream.Entry, 0, len(evs))
		for _, ev := range evs {
			if ev.GSeq != after+1 {
				break
			}
			run = append(run, stream.EntryOf(ev))
			after = ev.GSeq
		}
		h.dispatch(run)
		if len(run) < len(evs) || len(evs) == 0 {
			h.log.WarnContext(ctx, "sse reader: events skipped by the stream are no longer in the outbox; ending every stream so clients resume",
				"after", after, "next", next)
			h.metrics.readerGaps.Inc()
			h.skip(errStreamGap, next-1)
			return nil
		}
	}
	return nil
}

// skip ends every subscription with why and moves the position to gseq, in
// one step under the lock, so no subscription straddles the hole.
func (h *Hub) skip(why error, gseq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropAllLocked(why)
	h.last = stream.AfterGSeq(gseq)
}

// backoff is a capped, jittered exponential wait for reconnecting to Redis.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the next interval; it reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	switch {
	case b.d == 0:
		b.d = 100 * time.Millisecond
	case b.d < 5*time.Second:
		b.d *= 2
	}
	d := b.d/2 + rand.N(b.d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
