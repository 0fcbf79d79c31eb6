package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// users is an in-memory auth.UserStore.
type users map[string]*domain.User

func (u users) UserForToken(_ context.Context, id, _ string) (*domain.User, bool, error) {
	if user, ok := u[id]; ok {
		return user, false, nil
	}
	return nil, false, domain.ErrUnauthorized
}

func TestOpsGuard(t *testing.T) {
	t.Parallel()
	tokens := auth.NewTokens([]byte("ops-guard-test-secret-ops-guard-test"), 0)
	store := users{
		"admin":   {UUID: "admin", Role: domain.RoleAdmin},
		"viewer":  {UUID: "viewer", Role: domain.RoleViewer},
		"pending": {UUID: "pending", Role: domain.RoleAdmin, MustChangePassword: true},
	}
	token := func(id string) string {
		tok, _, err := tokens.Issue(id)
		require.NoError(t, err)
		return "Bearer " + tok
	}
	r := chi.NewRouter()
	r.Use(web.Middleware(discard())...)
	web.MountOps(r, web.OpsGuard(tokens, store, "scrape-token"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("metrics"))
	}))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	cases := []struct {
		name, path, auth string
		want             int
	}{
		{"anonymous metrics", "/metrics", "", http.StatusUnauthorized},
		{"anonymous pprof", "/debug/pprof/", "", http.StatusUnauthorized},
		{"garbage token", "/metrics", "Bearer garbage", http.StatusUnauthorized},
		{"wrong metrics token", "/metrics", "Bearer scrape-tokeN", http.StatusUnauthorized},
		{"metrics token", "/metrics", "Bearer scrape-token", http.StatusOK},
		{"metrics token on pprof", "/debug/pprof/", "Bearer scrape-token", http.StatusOK},
		{"viewer", "/metrics", token("viewer"), http.StatusForbidden},
		{"admin with a pending password change", "/metrics", token("pending"), http.StatusForbidden},
		{"admin with a pending password change on pprof", "/debug/pprof/", token("pending"), http.StatusForbidden},
		{"admin", "/metrics", token("admin"), http.StatusOK},
		{"admin on pprof", "/debug/pprof/cmdline", token("admin"), http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			require.NoError(t, err)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusUnauthorized {
				require.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// Without a configured metrics token, an empty bearer is not a match.
	open := chi.NewRouter()
	web.MountOps(open, web.OpsGuard(tokens, store, ""), http.NotFoundHandler())
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"":                 "",
		"Bearer abc":       "abc",
		"bearer  abc ":     "abc",
		"BEARER abc":       "abc",
		"Basic abc":        "",
		"Bearer":           "",
		"Bearerabc":        "",
		"Token abc":        "",
		"Bearer a.b.c":     "a.b.c",
		"Bearer abc extra": "abc extra",
	} {
		r := httptest.NewRequest(http.MethodGet, "/?token=query-is-ignored", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		require.Equal(t, want, web.BearerToken(r), "header %q", header)
	}
}
