package api

import (
	"crypto/sha256"
	_ "embed"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
// bearer token to the UI's own requests; see basicAdmin for its limiter,
// revocation and CSRF rules).
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

// basicCacheTTL is how long a verified /monitoring credential skips bcrypt.
// It bounds the cache's memory only: revocation is checked on every request.
const basicCacheTTL = time.Minute

// basicEntry is a /monitoring credential bcrypt already verified: the
// password hash it was verified against, and when the shortcut ends.
type basicEntry struct {
	hash string
	exp  time.Time
}

// errCrossSite refuses a state-changing /monitoring request a browser sent
// on behalf of another site (see crossSite).
var errCrossSite = domain.Errorf(domain.EForbidden, "Cross-site request refused")

// basicAdmin requires HTTP Basic credentials of an admin without a pending
// password change, and refuses cross-site state-changing requests.
//
// Every password check goes through the login limiter of POST /auth/login
// (same keys: client IP and username; same limit, 429 and Retry-After),
// before bcrypt runs, so /monitoring is no way around it (issue 8, item 1).
// A right password gives its attempt back, as at login.
//
// A verified credential skips bcrypt on later requests (the UI polls), but
// never the rest: each request still passes the limiter (Check, which counts
// nothing) and loads the user row (one indexed query), which must still hold
// the very password hash that was verified, the admin role and no pending
// password change. A password change or reset, a demotion or a deletion
// therefore locks the credential out on the next request (item 3).
func (s *Server) basicAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crossSite(r) {
			web.Error(w, r, errCrossSite)
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user == "" || pass == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="mazenet monitoring"`)
			web.Error(w, r, domain.Errorf(domain.EUnauthorized, "Not authenticated"))
			return
		}
		if err := s.checkBasic(w, r, user, pass); err != nil {
			if domain.ErrorCode(err) == domain.EUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="mazenet monitoring"`)
			}
			web.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkBasic verifies a /monitoring credential (see basicAdmin).
func (s *Server) checkBasic(w http.ResponseWriter, r *http.Request, user, pass string) error {
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	if c, ok := s.basicCache.Load(key); ok {
		if entry := c.(basicEntry); time.Now().Before(entry.exp) {
			if err := s.checkLoginLimit(w, r, user); err != nil {
				return err
			}
			u, err := s.DB.GetUserByUsername(r.Context(), user)
			switch {
			case err == nil && u.PasswordHash == entry.hash:
				return monitoringAllowed(u)
			case err != nil && domain.ErrorCode(err) != domain.ENotFound:
				return err // an outage is a 503, not a wrong password
			}
		}
		// Expired, or the password changed or the user is gone since it was
		// verified: forget it and check the password afresh.
		s.basicCache.Delete(key)
	}
	if err := s.allowLoginAttempt(w, r, user); err != nil {
		return err
	}
	u, err := s.DB.GetUserByUsername(r.Context(), user)
	var hash *string
	switch domain.ErrorCode(err) {
	case "":
		hash = &u.PasswordHash
	case domain.ENotFound:
	default: // an outage is a 503, and no failed guess
		s.releaseLoginAttempt(r, user)
		return err
	}
	if !auth.CheckPasswordOrDummyCost(hash, pass, s.BcryptCost) {
		return domain.Errorf(domain.EUnauthorized, "Incorrect username or password")
	}
	s.releaseLoginAttempt(r, user)
	if err := monitoringAllowed(u); err != nil {
		return err
	}
	s.basicCache.Store(key, basicEntry{hash: u.PasswordHash, exp: time.Now().Add(basicCacheTTL)})
	return nil
}

// monitoringAllowed admits admins without a pending password change.
func monitoringAllowed(u *domain.User) error {
	if u.Role != domain.RoleAdmin || u.MustChangePassword {
		return domain.ErrForbidden
	}
	return nil
}

// crossSite reports whether r is a state-changing request (any method but
// GET, HEAD and OPTIONS) that a browser sent from another site. Browsers
// attach cached Basic credentials to cross-site requests, so without this a
// hostile page could submit a form that pauses a queue or archives tasks in
// asynqmon (issue 8, item 2: CSRF). asynqmon has no CSRF token of its own.
//
// Refused: Sec-Fetch-Site cross-site or same-site (a sibling subdomain is
// another site for this purpose), or an Origin whose host is not the
// request's Host, or, when there is no Origin, a Referer whose host is not.
// "Origin: null" (sandboxed frames, some redirects) is refused. A request
// with none of these headers is not from a browser form and passes: CSRF
// needs a browser, and every current browser sends Origin on a cross-site
// POST.
func crossSite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		return !sameHost(origin, r.Host)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return !sameHost(ref, r.Host)
	}
	return false
}

// sameHost reports whether the URL raw names host (host[:port], compared
// without case and without the scheme's default port).
func sameHost(raw, host string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(withoutDefaultPort(u.Host, u.Scheme), withoutDefaultPort(host, u.Scheme))
}

// withoutDefaultPort drops :80 from an http and :443 from an https host.
func withoutDefaultPort(host, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}
