package postgres_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// pgGate is a TCP proxy in front of PostgreSQL that can hold back the
// server's answers to one statement: once armed, the next connection that
// sends a Bind message has everything the server says from then on kept
// until Open. The server still receives and runs the statement (and commits
// it), while the client sees nothing: the moment at which a request's
// deadline or a departed client can make lib/pq report a failure for a
// statement that succeeded. It also reports each cancel request lib/pq sends.
type pgGate struct {
	t        *testing.T
	ln       net.Listener
	target   string
	armed    atomic.Bool
	released chan struct{}
	once     sync.Once
	cancels  chan struct{} // one value per CancelRequest received
}

func newPGGate(t *testing.T, target string) *pgGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &pgGate{t: t, ln: ln, target: target, released: make(chan struct{}), cancels: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close(); g.Open() })
	go g.serve()
	return g
}

// Addr is the gate's host:port.
func (g *pgGate) Addr() string { return g.ln.Addr().String() }

// Arm makes the next Bind's connection hold the server's answers.
func (g *pgGate) Arm() { g.armed.Store(true) }

// Open delivers what was held, and lets everything through from then on.
func (g *pgGate) Open() { g.once.Do(func() { close(g.released) }) }

func (g *pgGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		var hold atomic.Bool
		go g.toServer(c, s, &hold)
		go g.toClient(s, c, &hold)
	}
}

// toServer forwards the client's messages one by one: the startup packet
// (or cancel request), then typed messages.
func (g *pgGate) toServer(c, s net.Conn, hold *atomic.Bool) {
	defer s.Close()
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(c, startup); err != nil {
		return
	}
	if len(startup) >= 4 && binary.BigEndian.Uint32(startup) == 80877102 { // CancelRequest
		g.cancels <- struct{}{}
	}
	if _, err := s.Write(append(n[:], startup...)); err != nil {
		return
	}
	for {
		var h [5]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(h[1:])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		if h[0] == 'B' && g.armed.CompareAndSwap(true, false) {
			hold.Store(true) // before the server can answer
		}
		if _, err := s.Write(append(h[:], body...)); err != nil {
			return
		}
	}
}

// toClient forwards the server's bytes, waiting for Open once held.
func (g *pgGate) toClient(s, c net.Conn, hold *atomic.Bool) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if hold.Load() {
				<-g.released
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gatedDB opens the store of dsn's schema through a new gate.
func gatedDB(t *testing.T, dsn string) (*postgres.DB, *pgGate) {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	g := newPGGate(t, u.Host)
	u.Host = g.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, u.String())
	require.NoError(t, err)
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db, g
}

func openDB(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

type enqueueOutcome struct {
	m   *domain.Mutation
	ev  domain.Event
	err error
}

// An enqueue whose statement committed but whose context ended before its
// answer was read (the request deadline, or the client leaving) reports the
// mutation, not the context's error: the api then answers 202, publishes its
// event and wakes the workers, instead of a 503 for a mutation that exists.
func TestEnqueueMutationCommittedAfterContextEnded(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t)
	direct := openDB(t, dsn)
	gated, gate := gatedDB(t, dsn)
	tid := newTopology(t, direct, domain.StatusActive)

	gate.Arm()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan enqueueOutcome, 1)
	go func() {
		m, ev, err := gated.EnqueueMutation(ctx, postgres.NewMutation{
			TopologyID: tid, Op: domain.OpAddLAN, Payload: json.RawMessage(`{"name": "x"}`)})
		done <- enqueueOutcome{m, ev, err}
	}()
	// The statement runs and commits; only its answer is held back.
	var id string
	require.Eventually(t, func() bool {
		return direct.GetContext(context.Background(), &id, `SELECT id FROM mutations WHERE topology_id = $1`, tid) == nil
	}, 30*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case <-gate.cancels: // lib/pq has marked the connection failed and asks the server to cancel
	case <-time.After(30 * time.Second):
		t.Fatal("lib/pq sent no cancel request")
	}
	gate.Open()
	var got enqueueOutcome
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("EnqueueMutation did not return")
	}
	require.NoError(t, got.err, "the mutation committed: the enqueue must report it although its context ended")
	require.Equal(t, id, got.m.ID)
	require.Equal(t, int64(1), got.m.Seq)
	require.Equal(t, domain.MutationPending, got.m.State)
	require.False(t, got.m.RequestedAt.IsZero())
	require.Equal(t, domain.EventEnqueued, got.ev.Name)
	require.Equal(t, int64(1), got.ev.Seq, "the event to publish is the committed one")
	outbox, err := direct.EventsAfter(context.Background(), tid, 0, 10)
	require.NoError(t, err)
	require.Len(t, outbox, 1)
	require.JSONEq(t, string(outbox[0].Envelope()), string(got.ev.Envelope()))
}

// An enqueue cancelled while its statement waits for the topology's row
// lock commits nothing and still reports the context's error.
func TestEnqueueMutationCancelledBeforeCommit(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t)
	direct := openDB(t, dsn)
	// The enqueue's own pool, named so that pg_stat_activity tells its
	// backends from those of tests running beside this one.
	app := dbtest.RandomName("enq")
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	enq := openDB(t, u.String())
	tid := newTopology(t, direct, domain.StatusActive)
	bg := context.Background()

	locker, err := direct.BeginTxx(bg, nil)
	require.NoError(t, err)
	defer locker.Rollback() //nolint:errcheck
	_, err = locker.ExecContext(bg, `SELECT 1 FROM topologies WHERE id = $1 FOR UPDATE`, tid)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(bg)
	done := make(chan enqueueOutcome, 1)
	go func() {
		m, ev, err := enq.EnqueueMutation(ctx, postgres.NewMutation{
			TopologyID: tid, Op: domain.OpAddLAN, Payload: json.RawMessage(`{"name": "x"}`)})
		done <- enqueueOutcome{m, ev, err}
	}()
	waiting := func(text string) func() bool {
		return func() bool {
			var n int
			err := direct.GetContext(bg, &n, `SELECT count(*) FROM pg_stat_activity
			  WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE $2`, app, text)
			return err == nil && n > 0
		}
	}
	require.Eventually(t, waiting("%INSERT INTO mutations%"), 30*time.Second, 10*time.Millisecond)
	cancel()
	// Whatever the enqueue does to find out what became of its statement
	// must not take the cancelled statement's commit for granted; let the
	// topology go once the statement is no longer waiting for it.
	require.Eventually(t, func() bool { return !waiting("%INSERT INTO mutations%")() }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, locker.Commit())
	var got enqueueOutcome
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("EnqueueMutation did not return")
	}
	require.Error(t, got.err, "nothing committed: the context's end is the answer")
	var n int
	require.NoError(t, direct.GetContext(bg, &n, `SELECT count(*) FROM mutations WHERE topology_id = $1`, tid))
	require.Zero(t, n)
}
