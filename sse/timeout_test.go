package sse_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/web"
	"github.com/decnet/mazenet/sse"
)

// TestStreamOutlivesHandshakeReadTimeout: the listener's read timeout bounds
// the handshake only. A stream that took its connection over must not
// inherit the read deadline net/http set for the request (it would end the
// stream when it passed), so it still hears a keepalive sent after the
// deadline and then a live event. Nothing is timed: the keepalive interval
// is simply longer than the read timeout.
func TestStreamOutlivesHandshakeReadTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := &sse.Server{
		DB: e.DB, Redis: e.Redis.Client, Keys: e.Keys, Streams: stream.New(e.Redis.Client, e.Keys),
		Tokens: e.Tokens, Tickets: e.Tickets, Log: slog.New(slog.DiscardHandler),
		Keepalive: 250 * time.Millisecond,
		Timeouts:  web.Timeouts{ReadHeader: time.Second, Read: 25 * time.Millisecond},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = s.Shutdown(sctx)
		cancel()
		<-done
	})
	base := "http://" + ln.Addr().String()
	waitReady(t, base)

	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)
	resp, c := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var snap snapshotBody
	c.snapshot(&snap)
	keepalive := false
	for f := range c.frames {
		if f.Comment == "keepalive" {
			keepalive = true
			break
		}
	}
	require.True(t, keepalive, "the stream ended instead of sending a keepalive")
	want := e.emit(nil, tid, 1)
	require.Equal(t, entryIDs(want), ids(c.events(1)))
}
