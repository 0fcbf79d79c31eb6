package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIMatchesRoutes keeps api/openapi.json true to the router: every
// API route is documented and every documented operation (except those the
// sse process serves) is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Process   string                     `json:"x-process"`
			Role      string                     `json:"x-role"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPI, &doc))

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			require.NotEmpty(t, op.Responses, "%s %s has no responses", method, path)
			if op.Process == "sse" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	s := &Server{}
	err := chi.Walk(s.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/") || route == "/healthz" || route == "/readyz" || route == "/metrics" {
			routed[method+" "+route] = true
		}
		return nil
	})
	require.NoError(t, err)

	var missing, stale []string
	for k := range routed {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !routed[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	require.Empty(t, missing, "routes missing from api/openapi.json")
	require.Empty(t, stale, "api/openapi.json documents operations the router does not serve")
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	status, body := e.do("GET", "/api/v1/openapi.json", nil, "")
	require.Equal(t, http.StatusOK, status)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
}
