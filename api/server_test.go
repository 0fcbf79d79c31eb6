package api

import (
	"net/http"
	"testing"
)

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if got, body := e.do("GET", "/healthz", nil, ""); got != http.StatusOK {
		t.Fatalf("healthz = %d %s", got, body)
	}
	if got, body := e.do("GET", "/readyz", nil, ""); got != http.StatusOK {
		t.Fatalf("readyz = %d %s", got, body)
	}
	if got, _ := e.do("GET", "/api/v1/nope", nil, ""); got != http.StatusNotFound {
		t.Fatalf("unknown route = %d, want 404", got)
	}
}
