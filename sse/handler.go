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

// replayPage is how many retained events one replay read returns.
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
// which hub subscription, which snapshot, and how a resume is answered from
// the outbox.
type feed interface {
	endpoint() string
	topologyID() string // "" = every topology
	// snapshot reads the snapshot payload from Postgres; resume is filled in
	// by the caller.
	snapshot(ctx context.Context) (snapshotFrame, error)
	// resume decides what a resume from id covers, given the hub position
	// pos (DOMAIN §10: none, complete or incomplete), and reads the first
	// page of the replay: retained events after id, up to pos.
	resume(ctx context.Context, id, pos stream.ID) (string, []domain.Event, error)
	// nextPage continues a replay after the last event sent, up to pos.
	nextPage(ctx context.Context, last domain.Event, pos stream.ID) ([]domain.Event, error)
	// follows reports whether ev comes right after prev in this stream, so
	// a replay promised complete can check that nothing vanished meanwhile.
	follows(prev stream.ID, ev domain.Event) bool
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
func resumeID(r *http.Request) *stream.ID {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if id, ok := stream.ParseID(v); ok {
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

// prime writes the snapshot and the replay; it returns the position after
// which live frames continue. The replay is read from the outbox, up to the
// hub position captured at registration: everything after it is in the
// subscription's buffer, so replay and live neither overlap nor leave a gap.
func (ss *session) prime(ctx context.Context, pos stream.ID, resume *stream.ID) (stream.ID, error) {
	f := ss.f
	snap, err := f.snapshot(ctx)
	if err != nil {
		return pos, ss.interrupted(ctx, "snapshot", err)
	}
	status := resumeNone
	var replay []domain.Event
	if resume != nil {
		status, replay, err = f.resume(ctx, *resume, pos)
		if err != nil {
			return pos, ss.interrupted(ctx, "replay", err)
		}
	}
	snap.SetResume(status)
	body, err := json.Marshal(snap)
	if err != nil {
		return pos, ss.interrupted(ctx, "snapshot encode", err)
	}
	if err := ss.out.send([]byte("event: snapshot\ndata: "), body, []byte("\n\n")); err != nil {
		return pos, errClientGone
	}

	prev := pos
	if resume != nil {
		prev = *resume
	}
	for len(replay) > 0 {
		frames := make([][]byte, 0, len(replay))
		for _, ev := range replay {
			if status == resumeComplete && !f.follows(prev, ev) {
				return pos, ss.interrupted(ctx, "replay", fmt.Errorf("event %s no longer retained after %s", stream.EventID(ev), prev))
			}
			frames = append(frames, newFrame(stream.EntryOf(ev)).bytes)
			prev = stream.EventID(ev)
		}
		if err := ss.out.send(frames...); err != nil {
			return pos, errClientGone
		}
		if len(replay) < replayPage {
			break
		}
		replay, err = f.nextPage(ctx, replay[len(replay)-1], pos)
		if err != nil {
			return pos, ss.interrupted(ctx, "replay", err)
		}
	}
	return pos, nil
}

// live forwards the hub's frames newer than last, batching whatever is
// waiting into one write, until the client leaves, the hub drops it, its
// slot is lost or the server drains. Everything that concerns the stream
// (frames, a due keepalive, a reason to stop) wakes the subscription's one
// notify channel, so this hot loop is a plain channel receive: no select, no
// per-client timer.
func (ss *session) live(last stream.ID) {
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
			if last.Less(f.id) {
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

// usable reports whether a resume id can name a point of a stream that the
// hub at pos has reached: an event id (both parts at least 1) not beyond pos
// (an id from the future, such as one Redis numbered before ids were
// durable, is not), or the zero id "0-0", which sorts before every event and
// asks for everything retained (the dashboard opens a page with it to show
// recent history).
func usable(id, pos stream.ID) bool {
	if id == (stream.ID{}) {
		return true
	}
	return id.GSeq >= 1 && id.Seq >= 1 && id.GSeq <= pos.GSeq
}

// resume answers a resume of the topology stream from id (DOMAIN §10). The
// id is unusable (none) when it cannot name a point of this topology's
// stream: see usable, and a retained event at that seq with another position
// (an id of another stream). Otherwise the replay is every retained event
// with a higher seq up to pos, and it is complete exactly when the first
// retained seq after the resume seq is the next one (a topology's seqs are
// consecutive; pruning only removes the oldest) or there is none.
func (t *topologyFeed) resume(ctx context.Context, id, pos stream.ID) (string, []domain.Event, error) {
	if !usable(id, pos) {
		return resumeNone, nil, nil
	}
	p, err := t.s.DB.TopologyResumePoint(ctx, t.id, id.Seq)
	if err != nil {
		return "", nil, err
	}
	if p.Retained && p.GSeq != id.GSeq {
		return resumeNone, nil, nil
	}
	evs, err := t.s.DB.TopologyEvents(ctx, t.id, id.Seq, pos.GSeq, replayPage)
	if err != nil {
		return "", nil, err
	}
	if p.Next == 0 || p.Next == id.Seq+1 {
		return resumeComplete, evs, nil
	}
	return resumeIncomplete, evs, nil
}

func (t *topologyFeed) nextPage(ctx context.Context, last domain.Event, pos stream.ID) ([]domain.Event, error) {
	return t.s.DB.TopologyEvents(ctx, t.id, last.Seq, pos.GSeq, replayPage)
}

func (t *topologyFeed) follows(prev stream.ID, ev domain.Event) bool { return ev.Seq == prev.Seq+1 }

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

// resume answers a resume of the overview stream from id: unusable on the
// same grounds as a topology stream's (the retained event at that position
// must have that seq); otherwise the replay is every retained event after
// the position up to pos, in position order, and it is complete exactly when
// nothing after the resume position was ever deleted from the outbox
// (relay_clock.pruned_gseq, raised by every deletion).
func (o *overviewFeed) resume(ctx context.Context, id, pos stream.ID) (string, []domain.Event, error) {
	if !usable(id, pos) {
		return resumeNone, nil, nil
	}
	p, err := o.s.DB.OverviewResumePoint(ctx, id.GSeq)
	if err != nil {
		return "", nil, err
	}
	if p.Retained && p.Seq != id.Seq {
		return resumeNone, nil, nil
	}
	evs, err := o.s.DB.EventsByGSeq(ctx, id.GSeq, pos.GSeq, replayPage)
	if err != nil {
		return "", nil, err
	}
	if p.Pruned <= id.GSeq {
		return resumeComplete, evs, nil
	}
	return resumeIncomplete, evs, nil
}

func (o *overviewFeed) nextPage(ctx context.Context, last domain.Event, pos stream.ID) ([]domain.Event, error) {
	return o.s.DB.EventsByGSeq(ctx, last.GSeq, pos.GSeq, replayPage)
}

func (o *overviewFeed) follows(prev stream.ID, ev domain.Event) bool { return ev.GSeq == prev.GSeq+1 }
