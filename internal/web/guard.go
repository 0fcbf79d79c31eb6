package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
)

// BearerToken extracts the token of an `Authorization: Bearer` header, or "".
// Tokens are never read from query parameters (DOMAIN §11.3): URLs end up in
// logs and browser histories.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// OpsGuard guards the operator endpoints of every process (/metrics and
// /debug/pprof). It admits an admin's access token, unless that admin still
// has to change their password (like every admin route), or, when
// metricsToken is set (DECNET_METRICS_TOKEN), that bearer token for a
// Prometheus scraper. Anyone else gets 401, a non-admin 403.
//
// The metrics token is compared as SHA-256 digests in constant time, so
// neither its content nor its length can be probed by timing.
func OpsGuard(tokens *auth.Tokens, users auth.UserStore, metricsToken string) func(http.Handler) http.Handler {
	var want [sha256.Size]byte
	if metricsToken != "" {
		want = sha256.Sum256([]byte(metricsToken))
	}
	return func(next http.Handler) http.Handler {
		return Handler(func(w http.ResponseWriter, r *http.Request) error {
			token := BearerToken(r)
			if metricsToken != "" && token != "" {
				got := sha256.Sum256([]byte(token))
				if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
					next.ServeHTTP(w, r)
					return nil
				}
			}
			u, _, err := auth.Authenticate(r.Context(), tokens, users, token)
			switch {
			case err != nil:
				return err
			case u.MustChangePassword:
				return domain.ErrPasswordChange
			case u.Role != domain.RoleAdmin:
				return domain.ErrForbidden
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// MountOps mounts metrics at /metrics and the runtime profiles (chi's
// Profiler: /debug/pprof/..., /debug/vars) behind guard.
func MountOps(r chi.Router, guard func(http.Handler) http.Handler, metrics http.Handler) {
	r.With(guard).Method(http.MethodGet, "/metrics", metrics)
	r.Mount("/debug", guard(middleware.Profiler()))
}
