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
	"github.com/decnet/mazenet/internal/stream"
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

	// While the reader is cut off, far more is appended than the
	// all-topologies stream retains: the reader cannot prove it missed
	// nothing, so it ends the stream with the error frame.
	proxy.outage()
	short := stream.New(e.Redis.Client, e.Keys)
	short.AllMaxLen = 10
	missed := e.emit(short, tid, 400)
	proxy.heal()
	f := conn.mustNext()
	require.Equal(t, "error", f.Event)
	require.JSONEq(t, `{"message": "Stream interrupted"}`, f.Data)
	_, ok := conn.next()
	require.False(t, ok, "the stream ends after the error frame")

	// The per-topology stream still has everything: resuming is exact.
	h := bearerHeader(tok)
	h.Set("Last-Event-ID", seen[0].ID)
	_, again := open(t, base, eventsPath(tid, nil), h)
	again.snapshot(&snap)
	require.Equal(t, "complete", snap.Resume)
	require.Equal(t, entryIDs(missed), ids(again.events(len(missed))))
}
