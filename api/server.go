// Package api is mazenet's REST API (chi): auth, users, topologies, the
// mutation queue, catalogs, health, metrics and the dashboard. Handlers are
// web.Handlers: every failure is returned and leaves through web.Error, the
// one error writer. Every route is registered from Handler below.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/materializer"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/relay"
	"github.com/decnet/mazenet/internal/web"
)

// Enqueuer is the part of *asynq.Client the API uses to wake workers.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Server is the API's dependencies. Build it with its fields, then call
// Handler once.
type Server struct {
	DB      *postgres.DB
	Redis   redis.UniversalClient
	Keys    rediskey.Keys
	Tokens  *auth.Tokens
	Tickets *auth.Tickets
	Relay   *relay.Relay
	Tasks   Enqueuer
	Queue   string // asynq queue for every task
	Log     *slog.Logger
	// Materializer answers heal's health check (nil = materializer.Noop);
	// the api never changes infrastructure.
	Materializer materializer.Materializer

	// BcryptCost is the cost of new password hashes (0 = auth.BcryptCost).
	BcryptCost int
	// RequestTimeout ends every request's context (0 = web.RequestTimeout),
	// so a hung dependency answers 503 instead of hanging. Serve the handler
	// with web.APITimeouts (web.NewServer), whose write timeout outlasts it.
	RequestTimeout time.Duration
	// SSEPublicURL is where the dashboard opens EventSource ("" = same origin).
	SSEPublicURL string
	// MetricsToken, when set, is a bearer token Prometheus may use for
	// /metrics besides an admin JWT (DECNET_METRICS_TOKEN).
	MetricsToken string
	// AsynqRedis, when set, mounts the asynq monitoring UI at /monitoring
	// for admins (HTTP Basic with an admin's username and password).
	AsynqRedis *redis.Options

	// basicCache remembers Basic credentials of /monitoring that bcrypt
	// verified, keyed by a hash of the credentials, with the password hash
	// they matched, so the UI's polling does not pay a bcrypt comparison per
	// request. It only skips bcrypt: every request still checks the user row
	// (basicAdmin), so revocation is immediate.
	basicCache *sync.Map // [32]byte → basicEntry; made by Handler
	wakeups    *wakeups  // coalesces apply wake-ups per topology; made by Handler
	// TrustProxyHeaders makes the login rate limiter count attempts against
	// the last X-Forwarded-For entry instead of the TCP peer. Set it only
	// behind a proxy that appends the address it saw, such as Heroku's
	// router (where every peer is the router itself); anywhere else a client
	// could forge the header to dodge the per-IP limit.
	TrustProxyHeaders bool
}

// Handler builds the router.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.basicCache == nil {
		s.basicCache = &sync.Map{}
	}
	if s.wakeups == nil {
		s.wakeups = &wakeups{}
	}
	r := chi.NewRouter()
	r.Use(web.Middleware(s.Log)...)
	r.Use(s.measure, web.Deadline(s.RequestTimeout))
	r.Get("/healthz", web.Healthz)
	r.Get("/readyz", web.Readyz(web.DependencyChecks(s.DB, s.Redis)...))
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(queryHygiene)
		s.authRoutes(r)
		s.userRoutes(r)
		s.catalogRoutes(r)
		s.topologyRoutes(r)
		s.mutationRoutes(r)
	})
	s.dashboardRoutes(r)
	s.opsRoutes(r)
	r.NotFound(web.NotFound)
	r.MethodNotAllowed(web.MethodNotAllowed)
	return r
}

type ctxKey int

const (
	userKey ctxKey = iota
	claimsKey
)

// userFrom returns the authenticated user (nil outside authenticated routes).
func userFrom(ctx context.Context) *domain.User {
	u, _ := ctx.Value(userKey).(*domain.User)
	return u
}

// claimsFrom returns the verified token claims of the request.
func claimsFrom(ctx context.Context) auth.Claims {
	c, _ := ctx.Value(claimsKey).(auth.Claims)
	return c
}

// Authenticate resolves an access token to its user (auth.Authenticate).
func (s *Server) Authenticate(ctx context.Context, token string) (*domain.User, auth.Claims, error) {
	return auth.Authenticate(ctx, s.Tokens, s.DB, token)
}

// authenticated requires a valid token; allowMustChange lets users with a
// pending forced password change through (change-password and logout only).
func (s *Server) authenticated(allowMustChange bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, c, err := s.Authenticate(r.Context(), web.BearerToken(r))
			if err != nil {
				web.Error(w, r, err)
				return
			}
			if u.MustChangePassword && !allowMustChange {
				web.Error(w, r, domain.ErrPasswordChange)
				return
			}
			ctx := context.WithValue(r.Context(), userKey, u)
			ctx = context.WithValue(ctx, claimsKey, c)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// viewer admits any authenticated user without a pending password change.
func (s *Server) viewer(next http.Handler) http.Handler { return s.authenticated(false)(next) }

// admin admits admins only (403 for viewers).
func (s *Server) admin(next http.Handler) http.Handler {
	return s.authenticated(false)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r.Context()).Role != domain.RoleAdmin {
			web.Error(w, r, domain.ErrForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}
