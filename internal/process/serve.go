package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/decnet/mazenet/internal/config"
)

// Logger returns log when code set one (a test's Config.Log), else JSON
// lines on stderr at level (DECNET_LOG_LEVEL).
func Logger(log *slog.Logger, level slog.Level) *slog.Logger {
	if log != nil {
		return log
	}
	return config.NewLogger(os.Stderr, level)
}

// Listen returns ln when code handed one in (a test binds 127.0.0.1:0 first
// and so knows the address), else a TCP listener on addr.
func Listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln != nil {
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// Server is what Serve runs: an *http.Server (web.NewServer), or the sse
// process's Server, whose Shutdown also ends its streams.
type Server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Serving names a process for Serve, says where it listens and bounds its
// drain.
type Serving struct {
	// Listener, when code set one, is served; otherwise Serve listens on
	// Addr.
	Listener net.Listener
	Addr     string
	// Name starts the log lines: "<Name> listening", "<Name> shutting down".
	Name string
	Log  *slog.Logger
	// Attrs are logged with "listening" after the address.
	Attrs []any
	// Grace bounds the drain after ctx ends (inside Heroku's 30 s).
	Grace time.Duration
	// Died, when not nil, delivers the error of a loop the process cannot
	// serve without (the sse reader): Serve then returns it at once.
	Died <-chan error
}

// Serve is how the api and sse processes serve: srv on the listener (Listen)
// until ctx ends, then srv.Shutdown with p.Grace, returning nil when the
// drain finished in time. A failure to serve (or a value on p.Died) returns
// at once, with no drain. Either way the listener is closed when Serve
// returns.
func Serve(ctx context.Context, srv Server, p Serving) error {
	ln, err := Listen(p.Listener, p.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	p.Log.Info(p.Name+" listening", append([]any{"addr", ln.Addr().String()}, p.Attrs...)...)

	select {
	case err := <-served:
		return err
	case err := <-p.Died:
		return err
	case <-ctx.Done():
	}
	p.Log.Info(p.Name + " shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.Grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
