package sse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/stream"
)

// Hub defaults.
const (
	// DefaultBufferSize bounds the frames a subscriber may have waiting. A
	// subscriber that falls this far behind is dropped, never waited for.
	DefaultBufferSize = 256
	// readerBlock is how long one XREAD waits for new entries; it also bounds
	// how long Run takes to notice its context ending.
	readerBlock = 2 * time.Second
	// readerBatch is the most entries one XREAD returns.
	readerBatch = 500
)

// Reasons the hub ends a subscription.
var (
	// errSlowClient: the subscriber's buffer was full. Its client reconnects
	// with Last-Event-ID and resumes from the per-topology stream.
	errSlowClient = errors.New("sse: subscriber too slow")
	// errStreamGap: the shared reader lost entries (it fell more than the
	// all-stream retention behind, e.g. after a long Redis outage), so no live
	// subscriber can be told it saw everything. They reconnect and resume.
	errStreamGap = errors.New("sse: shared reader missed trimmed entries")
)

// frame is one stream entry rendered once as SSE bytes
// (`id:`/`event:`/`data:`) and shared, read-only, by every subscriber.
type frame struct {
	id         entryID
	topologyID string
	bytes      []byte
}

// newFrame renders e. The envelope is compact JSON and has no line breaks;
// should a producer ever send one, each line becomes its own `data:` line so
// the frame cannot be split or forged.
func newFrame(e stream.Entry) *frame {
	var b strings.Builder
	b.Grow(len(e.ID) + len(e.Name) + len(e.Data) + 24)
	b.WriteString("id: ")
	b.WriteString(e.ID)
	b.WriteString("\nevent: ")
	b.WriteString(strings.NewReplacer("\r", "", "\n", "").Replace(e.Name))
	for _, line := range strings.Split(strings.ReplaceAll(e.Data, "\r\n", "\n"), "\n") {
		b.WriteString("\ndata: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
	}
	b.WriteString("\n\n")
	return &frame{id: mustParseID(e.ID), topologyID: e.TopologyID, bytes: []byte(b.String())}
}

// Hub is the process's one shared reader of the all-topologies stream and its
// in-memory fan-out (SYSTEM §4). Whatever the number of clients and
// topologies, the process tails Redis on one connection; each subscriber gets
// a bounded buffer, and one that is full is dropped instead of blocking the
// reader or the other subscribers (the benbjohnson/wtf inmem event model).
type Hub struct {
	rdb        redis.UniversalClient
	streams    *stream.Streams
	log        *slog.Logger
	bufferSize int
	metrics    *metrics

	ready chan struct{} // closed once last is known

	mu       sync.Mutex
	last     entryID // newest all-stream entry fanned out
	topics   map[string]map[*subscription]struct{}
	overview map[*subscription]struct{}
}

// newHub returns a hub; Run starts its reader.
func newHub(rdb redis.UniversalClient, streams *stream.Streams, log *slog.Logger, bufferSize int, m *metrics) *Hub {
	if bufferSize <= 0 {
		bufferSize = DefaultBufferSize
	}
	return &Hub{
		rdb: rdb, streams: streams, log: log, bufferSize: bufferSize, metrics: m,
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
func (h *Hub) Subscribe(topologyID string) (*subscription, entryID) {
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

// dropAll ends every subscription with why.
func (h *Hub) dropAll(why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
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

// Run is the shared reader: it starts at the newest entry of the
// all-topologies stream, then XREADs (BLOCK) from its last id and fans out,
// until ctx ends. On a Redis error it backs off and resumes from its last id;
// after an error, or when it is behind, it reads with a check that nothing
// after its last id was trimmed meanwhile (errStreamGap otherwise).
func (h *Hub) Run(ctx context.Context) error {
	var bo backoff
	for {
		id, err := h.streams.LastAllID(ctx)
		if err == nil {
			h.mu.Lock()
			h.last = mustParseID(id)
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
	checked := false
	for ctx.Err() == nil {
		h.mu.Lock()
		last := h.last
		h.mu.Unlock()
		var entries []stream.Entry
		var err error
		if checked {
			var gap bool
			entries, gap, err = h.readChecked(ctx, last)
			if err == nil && gap {
				h.log.WarnContext(ctx, "sse reader: entries trimmed before they were read; ending every stream so clients resume", "after", last.String())
				h.metrics.readerGaps.Inc()
				h.dropAll(errStreamGap)
			}
		} else {
			entries, err = h.streams.ReadAll(ctx, last.String(), readerBlock, readerBatch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.metrics.readerErrors.Inc()
			h.log.WarnContext(ctx, "sse reader: read", "err", err)
			checked = true
			if !bo.wait(ctx) {
				return nil
			}
			continue
		}
		bo.reset()
		checked = len(entries) >= readerBatch
		if len(entries) > 0 {
			h.dispatch(entries)
		}
	}
	return nil
}

// readChecked reads the entries after last together with the stream's state
// in one MULTI, so it knows exactly whether anything after last was trimmed
// before this read. Trimming removes the oldest entries, so when last is
// older than the first retained entry and entries were removed, the reader
// cannot prove it missed nothing and reports a gap.
func (h *Hub) readChecked(ctx context.Context, last entryID) ([]stream.Entry, bool, error) {
	key := h.streams.Keys().AllStream()
	var info *redis.XInfoStreamCmd
	var read *redis.XStreamSliceCmd
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		info = p.XInfoStream(ctx, key)
		read = p.XRead(ctx, &redis.XReadArgs{Streams: []string{key, last.String()}, Count: readerBatch, Block: -1})
		return nil
	})
	if err != nil && !isNoSuchKey(info.Err()) && !errors.Is(read.Err(), redis.Nil) {
		return nil, false, fmt.Errorf("sse: checked read: %w", err)
	}
	if isNoSuchKey(info.Err()) {
		return nil, false, nil
	}
	if err := info.Err(); err != nil {
		return nil, false, fmt.Errorf("sse: checked read: %w", err)
	}
	gap := trimmedAfter(info.Val(), last)
	res, err := read.Result()
	if errors.Is(err, redis.Nil) || len(res) == 0 {
		return nil, gap, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("sse: checked read: %w", err)
	}
	return decodeEntries(res[0].Messages), gap, nil
}

// trimmedAfter reports whether the stream described by info may have lost an
// entry newer than after: an explicit deletion above it, or after older than
// the first retained entry while some entries were removed (Redis does not
// record the ids MAXLEN trimming removes, so this errs on the side of "yes").
func trimmedAfter(info *redis.XInfoStream, after entryID) bool {
	if after.less(mustParseID(info.MaxDeletedEntryID)) {
		return true
	}
	removed := info.EntriesAdded > info.Length
	if !removed {
		return false
	}
	if info.Length == 0 {
		return true
	}
	return after.less(mustParseID(info.FirstEntry.ID))
}

// decodeEntries turns raw stream messages into entries, with the field names
// internal/stream writes (t, s, e, d); its Range and Read methods do the same
// for the reads that need no MULTI.
func decodeEntries(msgs []redis.XMessage) []stream.Entry {
	out := make([]stream.Entry, 0, len(msgs))
	for _, m := range msgs {
		e := stream.Entry{ID: m.ID}
		e.TopologyID, _ = m.Values["t"].(string)
		e.Name, _ = m.Values["e"].(string)
		e.Data, _ = m.Values["d"].(string)
		if s, ok := m.Values["s"].(string); ok {
			e.Seq, _ = strconv.ParseInt(s, 10, 64)
		}
		out = append(out, e)
	}
	return out
}

// isNoSuchKey reports Redis's answer to XINFO on a stream never written.
func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
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
