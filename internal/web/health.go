package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// readyTimeout bounds all of a readiness answer, so a hung dependency makes
// /readyz say so instead of hanging the prober.
const readyTimeout = 2 * time.Second

// Healthz answers 200 {"status": "ok"}: the process is alive. It checks no
// dependency, so an outage never gets a healthy process restarted.
func Healthz(w http.ResponseWriter, r *http.Request) {
	_ = JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Check is one named readiness probe.
type Check struct {
	Name string
	// Probe returns nil when the dependency is ready.
	Probe func(ctx context.Context) error
	// Down is what the body says of a failing probe ("unreachable" if empty).
	Down string
}

// Pinger is what a readiness check needs of a database handle.
type Pinger interface {
	PingContext(ctx context.Context) error
}

// DependencyChecks returns the "postgres" and "redis" checks every HTTP
// process runs.
func DependencyChecks(db Pinger, rdb redis.UniversalClient) []Check {
	return []Check{
		{Name: "postgres", Probe: func(ctx context.Context) error { return db.PingContext(ctx) }},
		{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
	}
}

// Readyz answers 200 with {"<check>": "ok", ...} when every check passes,
// else 503 (with Retry-After and a "detail" naming the failing checks). The
// checks run concurrently.
func Readyz(checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		results := make([]string, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = "ok"
				if c.Probe(ctx) != nil {
					results[i] = c.Down
					if results[i] == "" {
						results[i] = "unreachable"
					}
				}
			}()
		}
		wg.Wait()
		body := map[string]string{}
		var failing []string
		for i, c := range checks {
			body[c.Name] = results[i]
			if results[i] != "ok" {
				failing = append(failing, c.Name)
			}
		}
		if len(failing) == 0 {
			_ = JSON(w, http.StatusOK, body)
			return
		}
		body["detail"] = "Not ready: " + strings.Join(failing, ", ")
		w.Header().Set("Retry-After", retryAfter)
		_ = JSON(w, http.StatusServiceUnavailable, body)
	}
}
