package process_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/process"
	"github.com/decnet/mazenet/internal/web"
)

// discard is a logger that drops everything.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitBound only stops a broken test from hanging (nothing is timed).
const waitBound = time.Minute

// Serve answers until its context ends, lets an in-flight request finish
// (the drain), then returns nil with the listener closed.
func TestServeDrainsOnCancel(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ln, err := process.Listen(nil, "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- process.Serve(ctx, web.NewServer("", h, web.APITimeouts(), discard()),
			process.Serving{Listener: ln, Name: "test", Log: discard(), Grace: waitBound})
	}()

	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v before its in-flight request finished", err)
	default:
	}
	close(release)
	require.Equal(t, "done", <-body, "the in-flight request is answered")
	require.NoError(t, <-done)
	_, err = net.Dial("tcp", ln.Addr().String())
	require.Error(t, err, "the listener is closed")
}

// A dead background loop (Died) ends Serve at once with its error.
func TestServeReturnsWhenALoopDies(t *testing.T) {
	t.Parallel()
	ln, err := process.Listen(nil, "127.0.0.1:0")
	require.NoError(t, err)
	died := make(chan error, 1)
	boom := errors.New("reader died")
	died <- boom
	err = process.Serve(context.Background(), web.NewServer("", http.NotFoundHandler(), web.APITimeouts(), discard()),
		process.Serving{Listener: ln, Name: "test", Log: discard(), Grace: waitBound, Died: died})
	require.ErrorIs(t, err, boom)
}

// Logger keeps the logger code set, and builds one otherwise.
func TestLogger(t *testing.T) {
	t.Parallel()
	set := discard()
	require.Same(t, set, process.Logger(set, slog.LevelInfo))
	built := process.Logger(nil, slog.LevelWarn)
	require.False(t, built.Enabled(t.Context(), slog.LevelInfo), "the level is honoured")
	require.True(t, built.Enabled(t.Context(), slog.LevelWarn))
}

// Listen keeps a listener code handed in, and reports a bad address.
func TestListen(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got, err := process.Listen(ln, ":1")
	require.NoError(t, err)
	require.Same(t, ln, got)
	_, err = process.Listen(nil, "127.0.0.1:99999")
	require.ErrorContains(t, err, "listen: ")
}

// Run hands fn open stores with the pool asked for, closes them after, and
// closes a listener code handed in even when Postgres cannot be reached.
func TestRun(t *testing.T) {
	t.Parallel()
	rd := dbtest.NewRedis(t)
	var kept *process.Stores
	err := process.Run(context.Background(), process.Conns{DatabaseURL: dbtest.URL(t), MaxConns: 3, Redis: rd.Options()},
		func(st *process.Stores) error {
			kept = st
			require.Equal(t, 3, st.DB.Stats().MaxOpenConnections)
			require.NoError(t, st.DB.PingContext(t.Context()))
			return st.Redis.Ping(t.Context()).Err()
		})
	require.NoError(t, err)
	require.Error(t, kept.DB.PingContext(t.Context()), "the pool is closed after fn")
	require.ErrorIs(t, kept.Redis.Ping(t.Context()).Err(), redis.ErrClosed)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = process.Run(context.Background(), process.Conns{DatabaseURL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable",
		MaxConns: 1, Redis: rd.Options(), OpenTimeout: waitBound, Listener: ln},
		func(*process.Stores) error { t.Fatal("fn ran without a database"); return nil })
	require.ErrorContains(t, err, "postgres: ping")
	_, err = net.Dial("tcp", ln.Addr().String())
	require.Error(t, err, "the listener is closed")
}
