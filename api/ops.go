package api

import (
	"crypto/sha256"
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// openAPI is the REST API's OpenAPI document; TestOpenAPIMatchesRoutes keeps
// it true to the router.
//
//go:embed openapi.json
var openAPI []byte

// requestDuration is the API's request latency by route pattern and status.
var requestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "mazenet_api_request_duration_seconds",
	Help:    "API request latency by route and status.",
	Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
}, []string{"route", "method", "status"})

// measure records requestDuration; the route is chi's pattern, never the raw
// path, so ids do not explode the label set.
func (s *Server) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		requestDuration.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Observe(time.Since(start).Seconds())
	})
}

// opsRoutes mounts /metrics and /debug/pprof behind the ops guard (admin
// JWT or DECNET_METRICS_TOKEN), the OpenAPI document, and the asynq
// monitoring UI (admins, HTTP Basic, because a browser cannot attach a
// bearer token to the UI's own requests).
func (s *Server) opsRoutes(r chi.Router) {
	web.MountOps(r, web.OpsGuard(s.Tokens, s.DB, s.MetricsToken), promhttp.Handler())
	r.Get("/api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	if s.AsynqRedis != nil {
		mon := asynqmon.New(asynqmon.Options{
			RootPath: "/monitoring",
			RedisConnOpt: asynq.RedisClientOpt{
				Network: s.AsynqRedis.Network, Addr: s.AsynqRedis.Addr, Username: s.AsynqRedis.Username,
				Password: s.AsynqRedis.Password, DB: s.AsynqRedis.DB, TLSConfig: s.AsynqRedis.TLSConfig,
			},
		})
		r.With(s.basicAdmin).Handle("/monitoring", mon)
		r.With(s.basicAdmin).Handle("/monitoring/*", mon)
	}
}

// basicAdmin requires HTTP Basic credentials of an admin without a pending
// password change.
func (s *Server) basicAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="mazenet monitoring"`)
			web.Error(w, r, domain.Errorf(domain.EUnauthorized, "Not authenticated"))
			return
		}
		key := sha256.Sum256([]byte(user + "\x00" + pass))
		if exp, ok := s.basicCache.Load(key); ok && time.Now().Before(exp.(time.Time)) {
			next.ServeHTTP(w, r)
			return
		}
		u, err := s.DB.GetUserByUsername(r.Context(), user)
		var hash *string
		switch domain.ErrorCode(err) {
		case "":
			hash = &u.PasswordHash
		case domain.ENotFound:
		default: // an outage is a 503, not a wrong password
			web.Error(w, r, err)
			return
		}
		if !auth.CheckPasswordOrDummy(hash, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="mazenet monitoring"`)
			web.Error(w, r, domain.Errorf(domain.EUnauthorized, "Incorrect username or password"))
			return
		}
		if u.Role != domain.RoleAdmin || u.MustChangePassword {
			web.Error(w, r, domain.ErrForbidden)
			return
		}
		s.basicCache.Store(key, time.Now().Add(time.Minute))
		next.ServeHTTP(w, r)
	})
}
