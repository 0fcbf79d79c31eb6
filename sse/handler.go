package sse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/web"
)

// Endpoint labels for metrics.
const (
	endpointTopology = "topology"
	endpointOverview = "overview"
)

// replayPage is how many retained entries one replay read returns.
const replayPage = 500

// Resume outcomes reported in the snapshot frame (DOMAIN §10).
const (
	resumeNone       = "none"
	resumeComplete   = "complete"
	resumeIncomplete = "incomplete"
)

// Fixed frames (DOMAIN §9.2).
var (
	keepaliveFrame = []byte(": keepalive\n\n")
	errorFrame     = []byte("event: error\ndata: {\"message\": \"Stream interrupted\"}\n\n")
)

// errStreamInterrupted ends a stream with the error frame; the details are
// logged, never sent.
var errStreamInterrupted = errors.New("sse: stream interrupted")

// handleTopologyEvents is GET /api/v1/topologies/{id}/events. Viewers and
// admins get the same frames: no role filter, by the viewer-safe invariant
// recorded in the package doc (DOMAIN §13).
func (s *Server) handleTopologyEvents(w http.ResponseWriter, r *http.Request) error {
	user, err := s.authenticate(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	// 404 only after authentication, so ids cannot be probed; a non-UUID id
	// is simply not found.
	if _, err := s.DB.GetTopology(r.Context(), id); err != nil {
		return err
	}
	return s.serve(w, r, user, &topologyFeed{s: s, id: id})
}

// handleOverview is GET /api/v1/stream: every topology's events, with the
// same auth, cap, keepalive and resume rules (SYSTEM §4).
func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) error {
	user, err := s.authenticate(r)
	if err != nil {
		return err
	}
	return s.serve(w, r, user, &overviewFeed{s: s})
}

// authenticate returns the user uuid of the request (DOMAIN §10 step 1,
// §11.4). A present Authorization header decides alone (any ticket is then
// ignored); otherwise ?ticket= is redeemed, which consumes it whatever
// happens next. A JWT is never read from the query: ?token= is ignored and a
// JWT passed as ?ticket= is just an unknown ticket.
func (s *Server) authenticate(r *http.Request) (string, error) {
	ctx := r.Context()
	if len(r.Header.Values("Authorization")) > 0 {
		u, err := s.authenticateJWT(ctx, web.BearerToken(r))
		if err != nil {
			return "", err
		}
		if u.MustChangePassword {
			return "", domain.ErrPasswordChange
		}
		return u.UUID, nil
	}
	ticket := r.URL.Query().Get("ticket")
	if ticket == "" {
		return "", domain.Errorf(domain.EUnauthorized, "Not authenticated")
	}
	tk, err := s.Tickets.Redeem(ctx, ticket)
	if err != nil {
		return "", err
	}
	if !tk.Role.Valid() {
		return "", domain.ErrUnauthorized
	}
	return tk.UserUUID, nil
}

// feed is what differs between the topology stream and the overview stream:
// which hub subscription, which snapshot, which Redis stream to replay.
type feed interface {
	endpoint() string
	topologyID() string // "" = every topology
	// snapshot reads the snapshot payload from Postgres; resume is filled in
	// by the caller.
	snapshot(ctx context.Context) (snapshotFrame, error)
	// firstPage reads the retained entries after the resume id and decides
	// whether they are all that followed it.
	firstPage(ctx context.Context, after entryID) ([]stream.Entry, bool, error)
	// nextPage continues a replay after the last entry sent; gap means an
	// entry in between may have been trimmed meanwhile.
	nextPage(ctx context.Context, last stream.Entry) (entries []stream.Entry, gap bool, err error)
}

// snapshotFrame is the payload of `event: snapshot`; SetResume fills its
// "resume" field.
type snapshotFrame interface {
	SetResume(string)
}

// topologySnapshot is the snapshot of one topology (DOMAIN §9.2).
type topologySnapshot struct {
	*postgres.TopologySnapshot
	Resume string `json:"resume"`
}

func (t *topologySnapshot) SetResume(r string) { t.Resume = r }

// overviewSnapshot is the snapshot of the overview stream (SYSTEM §4).
type overviewSnapshot struct {
	Topologies []postgres.OverviewItem `json:"topologies"`
	Resume     string                  `json:"resume"`
}

func (o *overviewSnapshot) SetResume(r string) { o.Resume = r }

// serve runs one client's stream after authentication and the 404 check
// (DOMAIN §10 steps 3–8): slot, registration with the hub, 200, snapshot,
// replay, then live frames. The handshake, snapshot and replay run on the
// request's goroutine; on HTTP/1.1 the connection is then taken over from
// net/http (see sink.go) and the live phase runs on a small goroutine of its
// own, so an idle stream costs two small goroutines and a few hundred bytes.
//
// A handshake failure is returned (the caller writes it); once the stream is
// open, failures end the stream instead and serve returns nil.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, user string, f feed) error {
	ctx := r.Context()
	if !s.hub.waitReady(ctx, 5*time.Second) {
		return errNotReady
	}
	if !s.enter() {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1") // at once, to another process
		return errShuttingDown
	}
	slot, err := s.slots.Acquire(ctx, user)
	if err != nil {
		s.active.Done()
		return err
	}
	// Register first, so every live event after the captured position is
	// buffered while the snapshot and the replay are read.
	sub, pos := s.hub.Subscribe(f.topologyID())
	out, err := openSink(w, r, s.WriteTimeout)
	if err != nil {
		sub.Close()
		slot.Release()
		s.active.Done()
		return nil // the connection failed while being taken over: nothing can be written
	}
	s.metrics.handshake(f.endpoint(), http.StatusOK)
	gauge := s.metrics.connections.WithLabelValues(f.endpoint())
	gauge.Inc()
	ss := &session{s: s, f: f, sub: sub, slot: slot, out: out, gauge: gauge}
	last, err := ss.prime(out.context(), pos, resumeID(r))
	if err != nil {
		ss.finish(err)
		return nil
	}
	if out.detached() {
		go ss.live(last)
		return nil
	}
	ss.live(last)
	return nil
}

// resumeID returns the client's resume id: the Last-Event-ID header, else the
// lastEventId query parameter (the dashboard opens a fresh EventSource per
// reconnect). A malformed id is ignored.
func resumeID(r *http.Request) *entryID {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if id, ok := parseID(v); ok {
		return &id
	}
	return nil
}

// session is one open stream. It holds no reference to the request, so once
// the live phase starts the request and net/http's buffers are garbage.
type session struct {
	s     *Server
	f     feed
	sub   *subscription
	slot  *Slot
	out   sink
	gauge prometheus.Gauge
}

// errClientGone ends a session whose client left or could not be written to.
var errClientGone = errors.New("sse: client gone")

// prime writes the snapshot and the replay; it returns the newest id covered,
// after which live frames continue.
func (ss *session) prime(ctx context.Context, pos entryID, resume *entryID) (entryID, error) {
	f := ss.f
	snap, err := f.snapshot(ctx)
	if err != nil {
		return pos, ss.interrupted(ctx, "snapshot", err)
	}
	last := pos // the newest id sent or covered; live frames must be newer
	var replay []stream.Entry
	if resume == nil {
		snap.SetResume(resumeNone)
	} else {
		last = *resume
		var complete bool
		replay, complete, err = f.firstPage(ctx, *resume)
		if err != nil {
			return pos, ss.interrupted(ctx, "replay", err)
		}
		if complete {
			snap.SetResume(resumeComplete)
		} else {
			snap.SetResume(resumeIncomplete)
		}
	}
	body, err := json.Marshal(snap)
	if err != nil {
		return pos, ss.interrupted(ctx, "snapshot encode", err)
	}
	if err := ss.out.send([]byte("event: snapshot\ndata: "), body, []byte("\n\n")); err != nil {
		return pos, errClientGone
	}

	// Replay: retained entries after the resume id, up to (at least) the
	// captured position; the hub has everything after it buffered.
	for len(replay) > 0 {
		frames := make([][]byte, 0, len(replay))
		for _, e := range replay {
			frames = append(frames, newFrame(e).bytes)
		}
		if err := ss.out.send(frames...); err != nil {
			return pos, errClientGone
		}
		tail := replay[len(replay)-1]
		last = mustParseID(tail.ID)
		if len(replay) < replayPage || !last.less(pos) {
			break
		}
		var gap bool
		replay, gap, err = f.nextPage(ctx, tail)
		if err != nil {
			return pos, ss.interrupted(ctx, "replay", err)
		}
		if gap {
			return pos, ss.interrupted(ctx, "replay", errors.New("entries trimmed during replay"))
		}
	}
	return last, nil
}

// live forwards the hub's frames newer than last, batching whatever is
// waiting into one write, until the client leaves, the hub drops it, its
// slot is lost or the server drains. Everything that concerns the stream
// (frames, a due keepalive, a reason to stop) wakes the subscription's one
// notify channel, so this hot loop is a plain channel receive: no select, no
// per-client timer.
func (ss *session) live(last entryID) {
	sub := ss.sub
	stopGone := context.AfterFunc(ss.out.context(), sub.wake)
	defer stopGone()
	ss.slot.onLost(sub.wake)
	sub.wake() // look once at once: frames buffered during prime, a drain begun meanwhile
	var spare []*frame
	var batch [][]byte
	for range sub.notify {
		if stop, why := ss.stopping(); stop {
			ss.finish(why)
			return
		}
		frames := sub.take(spare)
		batch = batch[:0]
		for _, f := range frames {
			if last.less(f.id) {
				batch = append(batch, f.bytes)
				last = f.id
			}
		}
		clear(frames) // drop references to sent frames
		spare = frames
		if cap(spare) > 64 {
			spare = nil // a burst is over: do not keep its buffer per client
		}
		if len(batch) == 0 && sub.keepaliveDue.Swap(false) {
			batch = append(batch, keepaliveFrame)
		}
		if len(batch) == 0 {
			continue
		}
		err := ss.out.send(batch...)
		clear(batch)
		if cap(batch) > 64 {
			batch = nil
		}
		if err != nil {
			ss.finish(errClientGone)
			return
		}
		sub.wrote()
	}
}

// stopping reports whether the stream must end, and why. Each check is a
// lone non-blocking receive, which costs no lock while the channel is open.
func (ss *session) stopping() (bool, error) {
	if closed(ss.out.gone()) {
		return true, errClientGone
	}
	if why := ss.sub.Err(); why != nil {
		if errors.Is(why, errStreamGap) {
			return true, errStreamInterrupted
		}
		return true, errSlowClient // end now: the client resumes with its last id
	}
	if closed(ss.slot.Lost()) || closed(ss.s.closed) {
		_ = ss.out.send(retryFrame())
		return true, nil
	}
	return false, nil
}

// closed reports whether ch is closed, without blocking.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// finish ends the stream: the error frame if it failed, then the end of the
// response, the hub subscription, the slot (exactly once) and the drain count.
func (ss *session) finish(why error) {
	if errors.Is(why, errStreamInterrupted) {
		_ = ss.out.send(errorFrame)
	}
	reason := "server"
	if why != nil {
		reason = why.Error()
	}
	ss.s.Log.Debug("sse stream ended", "endpoint", ss.f.endpoint(), "topology_id", ss.f.topologyID(), "reason", reason)
	ss.out.close(errors.Is(why, errSlowClient) || errors.Is(why, errClientGone))
	ss.sub.Close()
	ss.slot.Release()
	ss.gauge.Dec()
	ss.s.active.Done()
}

// interrupted logs why a stream failed and returns errStreamInterrupted.
func (ss *session) interrupted(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return errClientGone
	}
	ss.s.Log.WarnContext(ctx, "sse: stream interrupted", "step", step, "topology_id", ss.f.topologyID(), "err", err)
	return errStreamInterrupted
}

// retryFrame asks the client to reconnect after 1–3 s, jittered so a
// draining process's clients do not all land at once.
func retryFrame() []byte {
	return []byte("retry: " + strconv.Itoa(1000+rand.IntN(2001)) + "\n\n")
}

// topologyFeed is the stream of one topology.
type topologyFeed struct {
	s  *Server
	id string
}

func (t *topologyFeed) endpoint() string   { return endpointTopology }
func (t *topologyFeed) topologyID() string { return t.id }

func (t *topologyFeed) snapshot(ctx context.Context) (snapshotFrame, error) {
	snap, err := t.s.DB.TopologySnapshot(ctx, t.id)
	if err != nil {
		return nil, err
	}
	return &topologySnapshot{TopologySnapshot: snap}, nil
}

// firstPage reads, in one MULTI, the entries after the resume id, the
// stream's state and the resume entry itself (in the topology stream, or in
// the longer all-topologies stream if already trimmed here). Seqs of one
// topology are consecutive, so "complete" is exact whenever the resume
// entry's seq is known: the first retained entry after it must be the next
// seq. Otherwise the replay is complete only if the resume id is not older
// than the oldest retained entry (trimming only ever removes the oldest).
// Redis 7 does not record MAXLEN-trimmed ids in max-deleted-entry-id (only
// XDEL's), which is why the seq is needed.
func (t *topologyFeed) firstPage(ctx context.Context, after entryID) ([]stream.Entry, bool, error) {
	keys := t.s.Streams.Keys()
	key := keys.TopologyStream(t.id)
	var own, all, page *redis.XMessageSliceCmd
	var info *redis.XInfoStreamCmd
	_, err := t.s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		own = p.XRangeN(ctx, key, after.String(), after.String(), 1)
		all = p.XRangeN(ctx, keys.AllStream(), after.String(), after.String(), 1)
		page = p.XRangeN(ctx, key, "("+after.String(), "+", replayPage)
		info = p.XInfoStream(ctx, key)
		return nil
	})
	if err != nil && !isNoSuchKey(err) {
		return nil, false, fmt.Errorf("sse: replay: %w", err)
	}
	if isNoSuchKey(info.Err()) {
		return nil, true, nil // nothing was ever appended
	}
	for _, c := range []*redis.XMessageSliceCmd{own, all, page} {
		if c.Err() != nil {
			return nil, false, fmt.Errorf("sse: replay: %w", c.Err())
		}
	}
	st := info.Val()
	entries := decodeEntries(page.Val())
	if after.less(mustParseID(st.MaxDeletedEntryID)) {
		return entries, false, nil // an entry after it was deleted
	}
	if len(entries) == 0 {
		return entries, true, nil // trimming never removes the newest entries
	}
	if entries[0].Seq == 1 {
		return entries, true, nil
	}
	resumeSeq := int64(-1)
	for _, m := range append(own.Val(), all.Val()...) {
		if e := decodeEntries([]redis.XMessage{m})[0]; e.TopologyID == t.id {
			resumeSeq = e.Seq
			break
		}
	}
	if resumeSeq >= 0 {
		return entries, entries[0].Seq == resumeSeq+1, nil
	}
	return entries, !after.less(mustParseID(st.FirstEntry.ID)), nil
}

// nextPage continues after the last entry sent; consecutive seqs prove that
// nothing was trimmed in between.
func (t *topologyFeed) nextPage(ctx context.Context, last stream.Entry) ([]stream.Entry, bool, error) {
	entries, err := t.s.Streams.RangeTopology(ctx, t.id, last.ID, replayPage)
	if err != nil {
		return nil, false, err
	}
	if len(entries) > 0 && entries[0].Seq != last.Seq+1 {
		return nil, true, nil
	}
	return entries, false, nil
}

// overviewFeed is the stream of every topology.
type overviewFeed struct {
	s *Server
}

func (o *overviewFeed) endpoint() string   { return endpointOverview }
func (o *overviewFeed) topologyID() string { return "" }

func (o *overviewFeed) snapshot(ctx context.Context) (snapshotFrame, error) {
	items, err := o.s.DB.OverviewSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &overviewSnapshot{Topologies: items}, nil
}

// firstPage reads the all-topologies stream after the resume id with its
// state, in one MULTI. Its entries interleave topologies, so there is no seq
// to prove continuity: the replay is complete when nothing was removed after
// the resume id, i.e. the id is not older than the oldest retained entry (or
// nothing was ever removed).
func (o *overviewFeed) firstPage(ctx context.Context, after entryID) ([]stream.Entry, bool, error) {
	entries, gap, err := o.page(ctx, after)
	return entries, !gap, err
}

func (o *overviewFeed) nextPage(ctx context.Context, last stream.Entry) ([]stream.Entry, bool, error) {
	return o.page(ctx, mustParseID(last.ID))
}

func (o *overviewFeed) page(ctx context.Context, after entryID) ([]stream.Entry, bool, error) {
	key := o.s.Streams.Keys().AllStream()
	var page *redis.XMessageSliceCmd
	var info *redis.XInfoStreamCmd
	_, err := o.s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		page = p.XRangeN(ctx, key, "("+after.String(), "+", replayPage)
		info = p.XInfoStream(ctx, key)
		return nil
	})
	if isNoSuchKey(info.Err()) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sse: replay: %w", err)
	}
	return decodeEntries(page.Val()), trimmedAfter(info.Val(), after), nil
}
