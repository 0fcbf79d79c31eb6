package sse_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/stream/streamtest"
	"github.com/decnet/mazenet/sse"
)

// redisProxy sits between an sse server and Redis so a test can cut the
// server's Redis connections and refuse new ones (an outage), then heal.
type redisProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newRedisProxy(t *testing.T, target string) *redisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &redisProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *redisProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every proxied connection.
func (p *redisProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// outage cuts every connection and refuses new ones until heal.
func (p *redisProxy) outage() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.cut()
}

func (p *redisProxy) heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// proxiedServer is an in-process sse server whose Redis goes through a proxy.
func proxiedServer(t *testing.T, e *testEnv) (*redisProxy, string) {
	t.Helper()
	opt := e.Redis.Options()
	p := newRedisProxy(t, opt.Addr)
	opt.Addr = p.ln.Addr().String()
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	s := &sse.Server{
		DB: e.DB, Redis: rdb, Keys: e.Keys, Streams: stream.New(rdb, e.Keys),
		Tokens: e.Tokens, Log: slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		p.heal()
		_ = s.Shutdown(context.Background())
		hs.Close()
		cancel()
		<-done
	})
	waitReady(t, hs.URL)
	return p, hs.URL
}

func TestReaderSurvivesRedisOutageWithoutLoss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy, base := proxiedServer(t, e)
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)
	before := e.emit(nil, tid, 3)
	require.Equal(t, entryIDs(before), ids(conn.events(3)))

	proxy.outage()
	during := e.emit(nil, tid, 20) // appended while the reader cannot read
	proxy.heal()
	after := e.emit(nil, tid, 5)
	require.Equal(t, append(entryIDs(during), entryIDs(after)...), ids(conn.events(25)))
}

// While the reader is cut off, far more is appended than the stream
// retains: when it reads again it meets a jump in positions and fills it
// from the outbox, so its clients miss nothing and are not interrupted.
func TestReaderFillsTrimmedEntriesFromTheOutbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy, base := proxiedServer(t, e)
	tid := e.topology(domain.StatusActive)
	other := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)
	_, overview := open(t, base, "/api/v1/stream", bearerHeader(tok))
	var osnap struct{}
	overview.snapshot(&osnap)
	seen := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(seen), ids(conn.events(1)))
	require.Equal(t, entryIDs(seen), ids(overview.events(1)))

	proxy.outage()
	short := stream.New(e.Redis.Client, e.Keys)
	short.MaxLen = 10
	rel := relay.New(e.DB, short, slog.New(slog.DiscardHandler))
	var missed, all []stream.Entry
	for i := 0; i < 4; i++ {
		missed = append(missed, e.emit(rel, tid, 100)...)
		all = append(all, missed[len(missed)-100:]...)
		all = append(all, e.emit(rel, other, 20)...)
	}
	retained, err := streamtest.All(context.Background(), e.Streams, stream.ID{}, 10000)
	require.NoError(t, err)
	require.Less(t, len(retained), len(all), "the stream was trimmed")
	proxy.heal()
	require.Equal(t, entryIDs(missed), ids(conn.events(len(missed))))
	require.Equal(t, entryIDs(all), ids(overview.events(len(all))))
	more := e.emit(nil, tid, 2)
	require.Equal(t, entryIDs(more), ids(conn.events(2)))
}

// When the outbox no longer has what the reader missed (pruned), every
// stream ends with the error frame, and a resume says exactly what was
// lost.
func TestReaderGapEndsStreamsThatThenResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy, base := proxiedServer(t, e)
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)
	seen := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(seen), ids(conn.events(1)))

	proxy.outage()
	short := stream.New(e.Redis.Client, e.Keys)
	short.MaxLen = 10
	rel := relay.New(e.DB, short, slog.New(slog.DiscardHandler))
	missed := e.emit(rel, tid, 400)
	require.NoError(t, rel.Sweep(context.Background()))
	_, err := e.DB.PruneEvents(context.Background(), 50)
	require.NoError(t, err)
	proxy.heal()
	f := conn.mustNext()
	require.Equal(t, "error", f.Event)
	require.JSONEq(t, `{"message": "Stream interrupted"}`, f.Data)
	_, ok := conn.next()
	require.False(t, ok, "the stream ends after the error frame")

	// Resuming tells the client what retention dropped and replays the rest.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", seen[0].ID.String())
	_, again := open(t, base, eventsPath(tid, nil), h)
	again.snapshot(&snap)
	require.Equal(t, "incomplete", snap.Resume)
	kept := missed[len(missed)-50:]
	require.Equal(t, entryIDs(kept), ids(again.events(len(kept))))
	more := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(more), ids(again.events(1)))
}

// Redis restarted empty, then restored from an older snapshot, under a
// running reader: the relay refills it with the same ids and the reader,
// reading after its own position, delivers every later event exactly once.
func TestReaderAcrossRedisRestartAndRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, base := e.server(nil)
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	_, conn := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	var snap snapshotBody
	conn.snapshot(&snap)
	ctx := context.Background()

	first := e.emit(nil, tid, 10)
	require.Equal(t, entryIDs(first), ids(conn.events(10)))
	snapStream, err := e.Redis.Client.Dump(ctx, e.Keys.EventStream()).Result()
	require.NoError(t, err)
	snapTop, err := e.Redis.Client.Dump(ctx, e.Keys.EventStreamTop()).Result()
	require.NoError(t, err)

	// Restarted empty.
	require.NoError(t, e.Redis.Client.Del(ctx, e.Keys.EventStream(), e.Keys.EventStreamTop()).Err())
	second := e.emit(nil, tid, 5)
	require.Equal(t, entryIDs(second), ids(conn.events(5)))
	refilled, err := streamtest.Topology(ctx, e.Streams, tid, stream.ID{}, 1000)
	require.NoError(t, err)
	require.Equal(t, append(entryIDs(first), entryIDs(second)...), entryIDs(refilled), "same ids after the refill")

	// Restored from the snapshot taken after the first ten.
	require.NoError(t, e.Redis.Client.RestoreReplace(ctx, e.Keys.EventStream(), 0, snapStream).Err())
	require.NoError(t, e.Redis.Client.RestoreReplace(ctx, e.Keys.EventStreamTop(), 0, snapTop).Err())
	third := e.emit(nil, tid, 5)
	require.Equal(t, entryIDs(third), ids(conn.events(5)), "nothing repeated, nothing skipped")
	conn.Close()

	// A resume from the middle gets the rest exactly once, same ids.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", first[6].ID.String())
	_, again := open(t, base, eventsPath(tid, nil), h)
	again.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	want := append(append(append([]stream.Entry{}, first[7:]...), second...), third...)
	require.Equal(t, entryIDs(want), ids(again.events(len(want))))
	live := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(live), ids(again.events(1)))
}
