package api

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/web"
)

// TestSlowBodyIsCutOff: a client trickling a login body byte by byte is
// answered (or dropped) once the listener's read timeout passes, long before
// it has sent its announced body. The timeout is tiny here; nothing is timed:
// the test counts the bytes the client managed to send.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	srv := web.NewServer("", e.Server.Handler(), web.Timeouts{ReadHeader: time.Second, Read: 50 * time.Millisecond,
		Write: time.Second, Idle: time.Second}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	body := `{"username": "admin", "password": "` + strings.Repeat("p", 2000) + `"}`
	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	_, err = fmt.Fprintf(nc, "POST /api/v1/auth/login HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	require.NoError(t, err)

	var sent atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := nc.Write([]byte{body[i]}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()

	// Whatever comes first, a response or the end of the connection, must
	// come before the body is complete.
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	got := sent.Load()
	require.Less(t, got, int64(len(body)), "the server waited for the whole trickled body")
	if err == nil {
		resp.Body.Close()
		require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestTimeout}, resp.StatusCode)
		t.Logf("answered %d after %d of %d body bytes", resp.StatusCode, got, len(body))
	} else {
		t.Logf("dropped after %d of %d body bytes: %v", got, len(body), err)
	}
}
