package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/web"
)

// dashboardFiles is the single-page dashboard: plain HTML, CSS and vanilla
// JavaScript as native ES modules (dashboard/js/*.js, loaded by
// <script type="module">), no build step. index.html is a template (the SSE
// base URL is injected into it); every other file is served verbatim under
// /assets/ at its path below dashboard/ (e.g. /assets/js/main.js).
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardIndex is index.html, parsed once; html/template escapes the
// injected SSE URL for its attribute context.
var dashboardIndex = template.Must(template.ParseFS(dashboardFiles, "dashboard/index.html"))

// dashboardAsset is one embedded file with what it is served with.
type dashboardAsset struct {
	body        []byte
	contentType string
	etag        string
}

// dashboardAssets holds every embedded file except index.html, keyed by its
// name under /assets/. Built once at start-up: the files never change.
var dashboardAssets = loadDashboardAssets()

// dashboardModules lists the JavaScript modules, sorted, for the page's
// <link rel="modulepreload">: the browser fetches the whole module graph at
// once instead of discovering it import by import.
var dashboardModules = func() []string {
	var out []string
	for name := range dashboardAssets {
		if strings.HasPrefix(name, "js/") && strings.HasSuffix(name, ".js") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}()

// assetTypes pins the content types of the asset kinds we ship, so the
// answer never depends on the host's MIME tables. Module scripts must be
// served with a JavaScript MIME type (browsers refuse anything else, and
// nosniff is set).
var assetTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

func loadDashboardAssets() map[string]dashboardAsset {
	out := map[string]dashboardAsset{}
	err := fs.WalkDir(dashboardFiles, "dashboard", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(p, "dashboard/")
		if name == "index.html" {
			return nil
		}
		body, err := dashboardFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := assetTypes[path.Ext(name)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		out[name] = dashboardAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("api: embedded dashboard: " + err.Error())
	}
	return out
}

// dashboardRoutes serves the dashboard: the page at / (and /ui/* for deep
// links), its files at /assets/*. Nothing else is registered, so /api/...,
// /healthz, /readyz, /metrics and /monitoring are never shadowed, and an
// unknown path still gets the JSON 404.
func (s *Server) dashboardRoutes(r chi.Router) {
	r.Method(http.MethodGet, "/", web.Handler(s.handleDashboardIndex))
	r.Method(http.MethodGet, "/ui", web.Handler(s.handleDashboardIndex))
	r.Method(http.MethodGet, "/ui/*", web.Handler(s.handleDashboardIndex))
	r.Method(http.MethodGet, "/assets/*", web.Handler(s.handleDashboardAsset))
}

// handleDashboardIndex renders index.html with the SSE base URL.
//
// The access token is never part of the page: the dashboard keeps it in
// sessionStorage (see js/session.js) and sends it as a bearer header.
func (s *Server) handleDashboardIndex(w http.ResponseWriter, r *http.Request) error {
	base, origin := sseBase(s.SSEPublicURL)
	var buf bytes.Buffer
	data := struct {
		SSEURL  string
		Modules []string
	}{base, dashboardModules}
	if err := dashboardIndex.Execute(&buf, data); err != nil {
		return fmt.Errorf("api: render dashboard: %w", err) // logged, never shown
	}
	h := w.Header()
	setDashboardSecurityHeaders(h, origin)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// handleDashboardAsset serves one embedded file. Assets are revalidated on
// every load (no-cache + ETag): they are tiny, and a deploy must never leave
// a browser running old modules against a new API.
func (s *Server) handleDashboardAsset(w http.ResponseWriter, r *http.Request) error {
	a, ok := dashboardAssets[chi.URLParam(r, "*")]
	if !ok {
		return domain.Errorf(domain.ENotFound, "Not found")
	}
	_, origin := sseBase(s.SSEPublicURL)
	h := w.Header()
	setDashboardSecurityHeaders(h, origin)
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	return nil
}

// sseBase normalises the configured SSE public URL into the base the page
// prepends to /api/v1/... (no trailing slash) and the origin the CSP must
// allow. Anything but an absolute http(s) URL means same origin ("", "").
func sseBase(raw string) (base, origin string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", ""
	}
	origin = u.Scheme + "://" + u.Host
	return origin + strings.TrimRight(u.EscapedPath(), "/"), origin
}

// setDashboardSecurityHeaders sets the CSP and friends. Scripts and styles
// come only from our own origin (no inline code at all; 'self' also covers
// the module graph's static imports), and the page may talk to the API
// (same origin) and to the SSE process's origin.
func setDashboardSecurityHeaders(h http.Header, sseOrigin string) {
	connect := "'self'"
	if sseOrigin != "" {
		connect += " " + sseOrigin
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; font-src 'self'; connect-src "+connect+"; "+
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}
