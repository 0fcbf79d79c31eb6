// Package sse is mazenet's SSE fan-out process (DOMAIN §10, SYSTEM §4): the
// per-topology event stream GET /api/v1/topologies/{id}/events and the
// dashboard's overview stream GET /api/v1/stream.
//
// The pieces, each in its own file:
//
//   - hub.go: one shared reader per process tails the all-topologies Redis
//     stream and fans entries out in memory; a subscriber whose bounded
//     buffer fills is dropped, never waited for.
//   - slots.go: the per-user connection cap, as expiring per-connection
//     leases in a Redis sorted set, exact across processes.
//   - handler.go: the handshake (auth → topology → slot → 200) and one
//     client's stream (snapshot, resume replay, live frames).
//   - revoke.go: revocation reaches open streams: a notice from the api
//     (Redis pub/sub) re-checks a user's streams at once, and a periodic
//     batched re-check bounds the rest; a dead stream ends with
//     `event: revoked`.
//   - sink.go: where a stream's bytes go; on HTTP/1.x the connection is
//     taken over from net/http after the handshake to keep idle streams small.
//   - server.go: routes, CORS, the keepalive sweep, Serve, Run and Shutdown;
//     metrics.go holds the series. Event ids, keys and entry fields belong
//     to internal/stream; what the api shares (errors and their statuses,
//     request log, health, the /metrics and pprof guard, listener timeouts)
//     is internal/web.
//
// Viewer-safe invariant (DOMAIN §13): viewers and admins receive exactly the
// same frames; there is no per-connection role filter. Every family the
// stream carries (mutation.*, status) holds only data a viewer can already
// read through viewer-gated REST (the mutation list and the hydrated view).
// A new family must prove the same, or add a role filter in handler.go
// before emit.
package sse

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/internal/web"
)

// Server defaults.
const (
	DefaultKeepalive    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// Server is the SSE process. Set its fields, then call Handler (or Serve)
// and Run; the fields must not change afterwards.
type Server struct {
	DB      *postgres.DB
	Redis   redis.UniversalClient
	Keys    rediskey.Keys
	Streams *stream.Streams
	Tokens  *auth.Tokens
	Tickets *auth.Tickets
	Log     *slog.Logger

	// MaxPerUser is the per-user connection cap across every SSE process
	// (DOMAIN §12); 0 means DefaultMaxPerUser.
	MaxPerUser int
	// Keepalive is the silence after which `: keepalive` is sent (15 s
	// covers Heroku's 55 s idle timeout); 0 means DefaultKeepalive.
	Keepalive time.Duration
	// SlotLease is how long a slot survives without a refresh; 0 means
	// DefaultSlotLease.
	SlotLease time.Duration
	// WriteTimeout bounds every write to a client; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// BufferSize bounds each subscriber's queue of frames; 0 means
	// DefaultBufferSize.
	BufferSize int
	// AllowedOrigins get CORS headers (DECNET_ALLOWED_ORIGINS).
	AllowedOrigins []string
	// MetricsToken, when set, is a bearer token that may read /metrics
	// besides admins' JWTs (DECNET_METRICS_TOKEN, for a Prometheus scraper).
	MetricsToken string
	// Timeouts are Serve's listener limits; the zero value means
	// web.StreamTimeouts.
	Timeouts web.Timeouts
	// RecheckInterval is how often every open stream's credential is
	// re-checked against Postgres, the bound on a revoked stream's life when
	// its revocation notice is lost (revoke.go); 0 means
	// DefaultRecheckInterval.
	RecheckInterval time.Duration

	initOnce sync.Once
	hub      *Hub
	slots    *Slots
	metrics  *metrics
	origins  map[string]bool

	streams    registry    // open streams by user, for revocation re-checks
	subscribed atomic.Bool // revocation notices followed (revoke.go)

	mu      sync.Mutex
	closing bool
	closed  chan struct{} // closed by Shutdown: every stream ends
	active  sync.WaitGroup
	httpSrv *http.Server
}

// init builds the parts that depend on the fields, once.
func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if s.Keepalive <= 0 {
			s.Keepalive = DefaultKeepalive
		}
		if s.WriteTimeout <= 0 {
			s.WriteTimeout = DefaultWriteTimeout
		}
		if s.MaxPerUser <= 0 {
			s.MaxPerUser = DefaultMaxPerUser
		}
		if s.SlotLease <= 0 {
			s.SlotLease = DefaultSlotLease
		}
		if s.RecheckInterval <= 0 {
			s.RecheckInterval = DefaultRecheckInterval
		}
		if s.Streams == nil {
			s.Streams = stream.New(s.Redis, s.Keys)
		}
		s.metrics = newMetrics()
		s.hub = newHub(s.DB, s.Streams, s.Log, s.BufferSize, s.metrics)
		s.slots = newSlots(s.Redis, s.Keys, s.MaxPerUser, s.SlotLease, s.Log)
		s.origins = map[string]bool{}
		for _, o := range s.AllowedOrigins {
			if o = strings.TrimSpace(o); o != "" {
				s.origins[o] = true
			}
		}
		s.closed = make(chan struct{})
	})
}

// Handler builds the router.
func (s *Server) Handler() http.Handler {
	s.init()
	r := chi.NewRouter()
	r.Use(web.Middleware(s.Log)...)
	r.Use(s.cors)
	r.Get("/healthz", web.Healthz)
	r.Get("/readyz", web.Readyz(append(web.DependencyChecks(s.DB, s.Redis),
		web.Check{Name: "reader", Down: "starting", Probe: s.readerReady})...))
	web.MountOps(r, web.OpsGuard(s.Tokens, s.DB, s.MetricsToken),
		promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	r.Get("/api/v1/topologies/{id}/events", s.handshake(endpointTopology, s.handleTopologyEvents))
	r.Get("/api/v1/stream", s.handshake(endpointOverview, s.handleOverview))
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)
	return r
}

// Run runs the shared stream reader, the slot-lease keeper, the keepalive
// sweep and the revocation watch (revoke.go) until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.init()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.watchRevocations(ctx)
	}()
	go func() {
		defer wg.Done()
		s.slots.Keep(ctx)
	}()
	go func() {
		defer wg.Done()
		s.keepalives(ctx)
	}()
	err := s.hub.Run(ctx)
	wg.Wait()
	return err
}

// keepalives sends `: keepalive` to every stream silent for Keepalive
// (DOMAIN §10 step 7), checking a few times per interval: a stream hears one
// after between Keepalive and 1.25 × Keepalive (at most one second more) of
// silence, well inside the 55 s idle timeout of Heroku's router.
func (s *Server) keepalives(ctx context.Context) {
	t := time.NewTicker(min(s.Keepalive/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.hub.keepalives(s.Keepalive)
		}
	}
}

// Serve serves Handler on ln until Shutdown; it then returns
// http.ErrServerClosed. Headers and the handshake are time-bounded
// (Timeouts); a stream has no overall write timeout: each write has its own
// deadline instead.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	t := s.Timeouts
	if t == (web.Timeouts{}) {
		t = web.StreamTimeouts()
	}
	s.httpSrv = web.NewServer("", s.Handler(), t, s.Log)
	srv := s.httpSrv
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown drains the process for SIGTERM (SYSTEM §4): it stops accepting,
// tells every client to come back after a 1–3 s jittered `retry:` (to
// another process) and ends its stream, releases every slot, and returns
// when all of that is done or ctx ends. Give it well under 30 s.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.closed)
	}
	srv := s.httpSrv
	s.mu.Unlock()
	s.hub.wakeAll()

	srvDone := make(chan error, 1)
	if srv != nil {
		go func() { srvDone <- srv.Shutdown(ctx) }() // closes the listeners at once
	} else {
		srvDone <- nil
	}
	streamsDone := make(chan struct{})
	go func() {
		s.active.Wait()
		close(streamsDone)
	}()
	var err error
	select {
	case <-streamsDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if rerr := s.slots.ReleaseAll(rctx); rerr != nil {
		s.Log.Warn("sse: shutdown: release slots (their leases will expire)", "err", rerr)
	}
	select {
	case serr := <-srvDone:
		if err == nil {
			err = serr
		}
	case <-ctx.Done():
		if srv != nil {
			_ = srv.Close()
		}
		err = ctx.Err()
	}
	return err
}

// enter registers a stream with the shutdown wait group, unless shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active.Add(1)
	return true
}

// HeldSlots is how many per-user slots this process holds (for tests and
// diagnostics).
func (s *Server) HeldSlots() int {
	s.init()
	return s.slots.Held()
}

// SlowClientDrops is how many subscribers the hub dropped for being slow.
func (s *Server) SlowClientDrops() int {
	s.init()
	return int(s.metrics.drops.Load())
}

// errReaderStarting fails the "reader" readiness check until the shared
// reader has its starting position.
var errReaderStarting = errors.New("sse: reader starting")

// readerReady is the "reader" readiness check.
func (s *Server) readerReady(context.Context) error {
	if !s.hub.Ready() {
		return errReaderStarting
	}
	return nil
}

// Handshake refusals while the process cannot stream (503 with Retry-After).
var (
	errShuttingDown = domain.Errorf(domain.EUnavailable, "Server shutting down")
	errNotReady     = domain.Errorf(domain.EUnavailable, "Event stream unavailable")
)

// handshake adapts an SSE endpoint: a failed handshake leaves through the
// edge's error writer and is counted by its status (an opened stream counts
// its 200 in serve).
func (s *Server) handshake(endpoint string, h web.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.metrics.handshake(endpoint, web.Error(w, r, err))
		}
	}
}

// cors answers the origins in AllowedOrigins (the dashboard may be served
// from another host than the SSE process); preflights end here with 204.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if len(s.origins) > 0 {
			h.Add("Vary", "Origin")
		}
		if origin := r.Header.Get("Origin"); origin != "" && s.origins[origin] {
			h.Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
			}
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticateJWT resolves an access token the way the api does: signature
// and claims, then the user row, the logout denylist and tokens_valid_from
// (DOMAIN §11.2). must_change_password is left to the caller.
func (s *Server) authenticateJWT(ctx context.Context, token string) (*domain.User, auth.Claims, error) {
	return auth.Authenticate(ctx, s.Tokens, s.DB, token)
}
