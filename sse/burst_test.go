package sse_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/sse"
)

// stalledClient opens a stream on a socket with a tiny receive buffer, reads
// up to its snapshot and then never reads again.
func stalledClient(t *testing.T, base, path, tok string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	_, err = raw.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body := bufio.NewReader(resp.Body)
	for {
		line, err := body.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, "event: snapshot") {
			return raw
		}
	}
}

// After an outage the relay appends a large backlog to Redis at once. The
// reader hands it to subscribers one batch at a time, a batch is at most
// half a subscriber's buffer, so every client that keeps reading gets all of
// it; a client that stopped reading is still dropped. The buffer is the
// smallest that keeps that ratio at the default batch (256 frames, batches
// of 128), so the 8 KiB events overflow the stalled client's socket buffers
// (a few MiB on loopback) and then its frame buffer quickly.
func TestBurstAfterOutageDropsOnlyStalledClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv, base := e.server(func(s *sse.Server) { s.BufferSize = 256 })
	tid := e.topology(domain.StatusActive)
	_, tok := e.user(domain.RoleViewer, false)

	var readers []*conn
	for i := 0; i < 2; i++ {
		_, c := open(t, base, eventsPath(tid, nil), bearerHeader(tok))
		var snap snapshotBody
		c.snapshot(&snap)
		readers = append(readers, c)
	}
	_, overview := open(t, base, "/api/v1/stream", bearerHeader(tok))
	var osnap struct{}
	overview.snapshot(&osnap)
	_, tok2 := e.user(domain.RoleViewer, false) // the cap is 5 per user
	stalledClient(t, base, eventsPath(tid, nil), tok2)

	// The outage: events commit (and are stamped) but cannot reach Redis.
	const burst = 1000
	backlog := e.emitPadded(e.deadRelay(), tid, burst, 8<<10)
	require.Zero(t, srv.SlowClientDrops())
	// Redis is back: one sweep appends the whole backlog.
	require.NoError(t, e.Relay.Sweep(context.Background()))
	top, err := e.Streams.Top(context.Background())
	require.NoError(t, err)
	require.Equal(t, backlog[burst-1].ID.GSeq, top)

	want := entryIDs(backlog)
	for _, c := range append(readers, overview) {
		require.Equal(t, want, ids(c.events(burst)))
	}
	waitFor(t, 30*time.Second, "the stalled client is dropped", func() bool { return srv.SlowClientDrops() == 1 })
	more := e.emit(nil, tid, 1)
	for _, c := range append(readers, overview) {
		require.Equal(t, entryIDs(more), ids(c.events(1)), "readers are still connected")
	}
	require.Equal(t, 1, srv.SlowClientDrops(), "only the stalled client was dropped")
}
