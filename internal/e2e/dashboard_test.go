package e2e

// The dashboard driven by a real headless Chromium against the whole stack
// in-process: the api process (serving the page), a worker process (asynq
// server and its fast path) and the SSE server on its own origin, so the
// page exercises tickets, CORS and the CSP exactly as in production.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/sse"
	"github.com/decnet/mazenet/worker"
)

const (
	dashAdminUser     = "operator"
	dashViewerUser    = "watcher"
	dashRookieUser    = "rookie" // must change the password at first sign-in
	dashAdminPassword = "correct horse battery staple"
)

// dashChromium finds a Chromium/Chrome binary, or skips the test saying how
// to get one.
func dashChromium(t *testing.T) string {
	t.Helper()
	for _, env := range []string{"CHROMIUM_BIN", "CHROME_BIN"} {
		if p := os.Getenv(env); p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed: apt-get install chromium (or set CHROMIUM_BIN)")
	return ""
}

// dashProxy is a TCP proxy in front of the SSE process whose connections a
// test can cut, like a network blip. (The SSE process takes its streams over
// from net/http, so httptest's CloseClientConnections does not reach them.)
type dashProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newDashProxy(t *testing.T, target string) *dashProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &dashProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *dashProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *dashProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(u, c)
		go pipe(c, u)
	}
}

// Drop cuts every connection open through the proxy.
func (p *dashProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *dashProxy) Close() {
	p.ln.Close()
	p.Drop()
	p.wg.Wait()
}

// dashStack is the api, a worker and the SSE process, each on its own port;
// the browser reaches the SSE process through a proxy the test can cut.
type dashStack struct {
	APIURL string
	SSEURL string
	Proxy  *dashProxy
	SSE    *sse.Server
	Tokens *auth.Tokens
	Admin  *domain.User
}

// startDashStack starts the stack; tune, when set, adjusts the SSE server
// before it starts.
func startDashStack(t *testing.T, tune func(*sse.Server)) *dashStack {
	t.Helper()
	b := newBackend(t)
	db, tokens := b.DB, b.Tokens

	// The api's address first: the SSE process must allow it as an origin.
	apiLn := listen(t)
	apiURL := "http://" + apiLn.Addr().String()

	// SSE process, in-process so the test can read its slot count, wired by
	// sse.NewServer as sse.Run wires it.
	scfg := b.sseConfig()
	scfg.AllowedOrigins = []string{apiURL}
	ss := sse.NewServer(scfg, db, b.Redis.Client)
	if tune != nil {
		tune(ss)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	loops.Add(1)
	go func() { defer loops.Done(); _ = ss.Run(ctx) }()
	sseHS := httptest.NewServer(ss.Handler())
	proxy := newDashProxy(t, sseHS.Listener.Addr().String())
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		proxy.Close()
		_ = ss.Shutdown(sctx)
		sseHS.CloseClientConnections()
		sseHS.Close()
		cancel()
		loops.Wait()
	})

	// Worker process: asynq server plus its sweep and fast path.
	wcfg := b.workerConfig("e2e-dashboard")
	wcfg.Materializer = worker.MaterializerNoop
	startWorker(t, wcfg)

	// API process, serving the dashboard, pointing it at the SSE origin.
	acfg := b.apiConfig()
	acfg.Listener = apiLn
	acfg.SSEPublicURL = proxy.URL()
	startAPI(t, acfg)

	waitReady(t, sseHS.URL)
	hash, err := auth.HashPassword(dashAdminPassword, bcrypt.MinCost)
	require.NoError(t, err)
	admin := &domain.User{Username: dashAdminUser, PasswordHash: hash, Role: domain.RoleAdmin}
	for _, u := range []*domain.User{
		admin,
		{Username: dashViewerUser, PasswordHash: hash, Role: domain.RoleViewer},
		{Username: dashRookieUser, PasswordHash: hash, Role: domain.RoleAdmin, MustChangePassword: true},
	} {
		require.NoError(t, db.CreateUser(context.Background(), u))
	}
	return &dashStack{APIURL: apiURL, SSEURL: sseHS.URL, Proxy: proxy, SSE: ss, Tokens: tokens, Admin: admin}
}

// call sends a REST request to the api as the admin and returns the status
// and the decoded JSON body.
func (st *dashStack) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	tok, _, err := st.Tokens.Issue(st.Admin.UUID)
	require.NoError(t, err)
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, st.APIURL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// holdSSE opens the overview stream as the admin from Go and keeps it open
// (holding one of the admin's SSE slots) until the returned func is called.
func (st *dashStack) holdSSE(t *testing.T) (status int, release func()) {
	t.Helper()
	code, tk := st.call(t, http.MethodPost, "/api/v1/auth/sse-ticket", nil)
	require.Equal(t, http.StatusOK, code)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.SSEURL+"/api/v1/stream?ticket="+tk["ticket"].(string), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp.StatusCode, func() { cancel(); resp.Body.Close() }
}

// dashBrowser drives one headless Chromium tab and remembers what the page
// wrote to its console.
type dashBrowser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newDashBrowser(t *testing.T, bin string) *dashBrowser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &dashBrowser{t: t, ctx: ctx}
	// Console starts the browser (no timeout on this first use) and subscribes.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-done
	})
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return b
}

// fail dumps the console and a screenshot, then fails the test.
func (b *dashBrowser) fail(format string, args ...any) {
	b.t.Helper()
	b.dumpConsole()
	if p := b.screenshot("dashboard-failure.png"); p != "" {
		b.t.Logf("failure screenshot: %s", p)
	}
	b.t.Fatalf(format, args...)
}

func (b *dashBrowser) dumpConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		b.t.Logf("browser console: %s (%s:%d)", m, m.URL, m.Line+1)
	}
}

// do runs steps with a bound on their time.
func (b *dashBrowser) do(what string, limit time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// click clicks the element matching sel like a user would. The page redraws
// live lists as events arrive, so a node found by the query can be replaced
// before the click lands; then it looks the element up again.
func (b *dashBrowser) click(sel string) {
	b.t.Helper()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.fail("click %s: %v", sel, err)
}

// text returns the text of the first element matching sel.
func (b *dashBrowser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitFor polls a JavaScript predicate until it is true.
func (b *dashBrowser) waitFor(what, predicate string, limit time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(limit))); err != nil {
		b.fail("waiting for %s: %v", what, err)
	}
}

// screenshot writes a full-page PNG into the temp dir (or
// $DASHBOARD_SCREENSHOT_DIR) and returns its path, "" on failure.
func (b *dashBrowser) screenshot(name string) string {
	dir := os.Getenv("DASHBOARD_SCREENSHOT_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot: %v", err)
		return ""
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
		return ""
	}
	return p
}

// extraShot takes a screenshot only when DASHBOARD_SCREENSHOT_DIR is set
// (for looking at more pages than the final one).
func (b *dashBrowser) extraShot(name string) {
	if os.Getenv("DASHBOARD_SCREENSHOT_DIR") != "" {
		b.screenshot(name)
	}
}

// signIn fills the login form.
func (b *dashBrowser) signIn(user, password string) {
	b.t.Helper()
	b.do("sign in as "+user, 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#login-username")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
}

// problems returns uncaught exceptions and CSP violations seen so far.
func (b *dashBrowser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// jsq quotes s for use inside a JavaScript string literal in a selector.
func jsq(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, `"`, `\"`).Replace(s)
}

func TestDashboardEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	b := newDashBrowser(t, bin)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	exists := func(sel string) string { return fmt.Sprintf(`document.querySelector('%s') !== null`, jsq(sel)) }

	// Sign in.
	b.do("open the dashboard", 20*time.Second,
		chromedp.Navigate(st.APIURL+"/"),
		chromedp.WaitVisible(css("#login-username")),
	)
	b.extraShot("dashboard-login.png")
	b.signIn(dashAdminUser, dashAdminPassword)
	b.do("list page", 15*time.Second, chromedp.WaitVisible(css("#create-name")))
	// The overview stream connects to the SSE origin with a ticket.
	b.waitFor("overview stream live", exists(`#conn[data-state="live"]`), 15*time.Second)

	// Create a blank topology; it shows up in the list, pending.
	const name = "e2e-maze"
	row := fmt.Sprintf(`tr[data-topology-name="%s"]`, name)
	b.do("create a blank topology", 15*time.Second,
		chromedp.SendKeys(css("#create-name"), name),
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css(row)),
	)
	require.Equal(t, "pending", b.text(row+" .badge"))

	// Open it: the canvas shows the DMZ LAN and its gateway decky.
	b.click(row + " a.t-name")
	b.do("open the topology", 15*time.Second,
		chromedp.WaitVisible(css(`#canvas g.lan[data-name="dmz"]`)),
		chromedp.WaitVisible(css(`#canvas g.decky[data-name="dmz-gateway"]`)),
	)
	require.Equal(t, name, b.text("#topo-name"))
	require.Contains(t, b.text(`#canvas g.lan[data-name="dmz"] .lan-subnet`), "/24")
	require.Equal(t, "DMZ", b.text(`#canvas g.lan[data-name="dmz"] .dmz-pill-text`))
	require.Equal(t, "dmz-gateway", b.text(`#canvas g.decky[data-name="dmz-gateway"] .decky-name`))
	require.True(t, strings.HasSuffix(b.text(`#canvas g.decky[data-name="dmz-gateway"] .decky-ip`), ".2"))
	b.waitFor("topology stream live", exists(`#conn[data-state="live"]`), 15*time.Second)

	// Deploy: the status badge turns active through the live stream, and
	// the mutation form opens.
	b.click(".topo-actions .act-deploy")
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("status event in the feed", exists(`#feed .feed-item[data-event="status"]`), 10*time.Second)
	b.waitFor("mutation form", exists(`#op-form[data-op="add_lan"]`), 10*time.Second)

	// add_lan through the form: applied in the feed, new LAN on the canvas.
	b.do("submit add_lan", 10*time.Second,
		chromedp.SendKeys(css("#f-add_lan-name"), "corp"),
		chromedp.Click(css("#op-submit")),
	)
	b.waitFor("add_lan applied", exists(`#feed .feed-item[data-event="mutation.applied"]`), 20*time.Second)
	b.waitFor("corp on the canvas", exists(`#canvas g.lan[data-name="corp"]`), 10*time.Second)
	require.Contains(t, b.text(`#canvas g.lan[data-name="corp"] .lan-subnet`), "172.16.")
	require.Contains(t, b.text("#op-msg"), "Queued add_lan")

	// add_decky with two services picked from the catalog, homed on corp.
	b.do("open add_decky", 10*time.Second,
		chromedp.SetValue(css("#op-select"), "add_decky"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#op-select').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(css(`#op-form[data-op="add_decky"]`)),
		chromedp.SendKeys(css("#f-add_decky-name"), "web-01"),
		chromedp.SetValue(css("#f-add_decky-lan"), "corp"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="ssh"] input`)),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)),
	)
	b.extraShot("dashboard-add-decky.png")
	b.do("submit add_decky", 10*time.Second, chromedp.Click(css("#op-submit")))
	b.waitFor("web-01 on the canvas", exists(`#canvas g.decky[data-name="web-01"]`), 20*time.Second)
	require.Equal(t, "2 svc", b.text(`#canvas g.decky[data-name="web-01"] .decky-svc`))

	// attach_decky: the gateway bridges into corp, drawn as a link.
	b.do("attach the gateway to corp", 10*time.Second,
		chromedp.SetValue(css("#op-select"), "attach_decky"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#op-select').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(css(`#op-form[data-op="attach_decky"]`)),
		chromedp.SetValue(css("#f-attach_decky-decky"), "dmz-gateway"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-attach_decky-decky').dispatchEvent(new Event('change'))`),
		chromedp.SetValue(css("#f-attach_decky-lan"), "corp"),
		chromedp.Click(css("#op-submit")),
	)
	b.waitFor("bridge link", exists(`#canvas g.link[data-decky="dmz-gateway"][data-lan="corp"]`), 20*time.Second)

	// A rejected mutation: the feed shows mutation.failed with its reason,
	// and the topology degrades.
	b.do("submit a duplicate add_lan", 10*time.Second,
		chromedp.SetValue(css("#op-select"), "add_lan"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#op-select').dispatchEvent(new Event('change'))`),
		chromedp.WaitVisible(css(`#op-form[data-op="add_lan"]`)),
		chromedp.SendKeys(css("#f-add_lan-name"), "corp"),
		chromedp.Click(css("#op-submit")),
	)
	b.waitFor("mutation.failed in the feed", exists(`#feed .feed-item[data-event="mutation.failed"] .reason`), 20*time.Second)
	require.Contains(t, b.text(`#feed .feed-item[data-event="mutation.failed"] .reason`), "LAN 'corp' already exists")
	b.waitFor("status degraded", exists(`#topo-status[data-status="degraded"]`), 20*time.Second)
	b.waitFor("failure in the mutation list", exists(`#mutations tr[data-state="failed"]`), 10*time.Second)

	// Every accepted enqueue advanced the cursor by one: 4 mutations after v1.
	require.Equal(t, "expects v5", b.text("#cursor"))
	require.Equal(t, "live", b.text("#conn .conn-text"))
	require.Empty(t, b.problems(), "uncaught exceptions or CSP violations")

	// Back on the list the status is live too.
	b.click(`.crumbs a[href="#/"]`)
	b.do("back to the list", 10*time.Second, chromedp.WaitVisible(css(row)))
	b.waitFor("degraded in the list", exists(row+` .badge[data-status="degraded"]`), 10*time.Second)
	b.extraShot("dashboard-list.png")

	// Leave the topology page on screen for the screenshot.
	b.click(row + " a.t-name")
	b.do("reopen the topology", 15*time.Second, chromedp.WaitVisible(css(`#canvas g.decky[data-name="web-01"]`)))
	b.click(`#canvas g.decky[data-name="dmz-gateway"]`)
	b.do("decky details", 10*time.Second, chromedp.WaitVisible(css(`#details .kv`)))
	b.waitFor("topology stream live again", exists(`#conn[data-state="live"]`), 15*time.Second)
	// The reopened page replays the retained history into its feed.
	b.waitFor("history replayed", exists(`#feed .feed-item[data-event="mutation.failed"]`), 10*time.Second)
	if p := b.screenshot("dashboard.png"); p != "" {
		t.Logf("screenshot: %s", p)
	}

	// A viewer watches the same topology read-only: no forms, no buttons.
	b.click("#logout")
	b.signIn(dashViewerUser, dashAdminPassword)
	// Signing in keeps the deep link: the topology page comes back first.
	b.do("viewer lands on the topology", 15*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="corp"]`)))
	b.click(`.crumbs a[href="#/"]`)
	b.do("viewer list", 15*time.Second, chromedp.WaitVisible(css(row)))
	b.waitFor("viewer list is read-only", `document.querySelector('#create-form') === null && document.querySelector('.readonly-note') !== null`, 5*time.Second)
	require.Equal(t, "viewer · read-only", b.text(".user-chip .role"))
	b.click(row + " a.t-name")
	b.do("viewer topology", 15*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="corp"]`)))
	b.waitFor("viewer stream live", exists(`#conn[data-state="live"]`), 15*time.Second)
	b.waitFor("no mutation form for viewers", `document.querySelector('#op-form') === null && document.querySelector('#mutate .readonly-note') !== null && document.querySelector('.act-teardown') === null`, 5*time.Second)

	// A user with a forced password change gets the change form first, and
	// lands on the list after it (signed in again with the new password).
	b.click("#logout")
	b.signIn(dashRookieUser, dashAdminPassword)
	b.do("change password", 15*time.Second,
		chromedp.WaitVisible(css("#cp-new")),
		chromedp.SendKeys(css("#cp-new"), "a brand new passphrase"),
		chromedp.SendKeys(css("#cp-confirm"), "a brand new passphrase"),
		chromedp.Click(css("#cp-submit")),
		chromedp.WaitVisible(css(".user-chip .user-name")),
	)
	require.Equal(t, dashRookieUser, b.text(".user-chip .user-name"))

	if probs := b.problems(); len(probs) > 0 {
		b.dumpConsole()
		t.Fatalf("browser problems: %v", errors.New(strings.Join(probs, "; ")))
	}
}

// The page's own reconnect: a dropped stream comes back at once with a fresh
// ticket and resumes after the last event it saw; when the SSE process keeps
// refusing the handshake (here: the per-user connection cap) the indicator
// stops retrying and shows the server's reason, and Retry recovers.
func TestDashboardReconnectAndRefusal(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, func(s *sse.Server) { s.MaxPerUser = 1 })
	b := newDashBrowser(t, bin)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	exists := func(sel string) string { return fmt.Sprintf(`document.querySelector('%s') !== null`, jsq(sel)) }

	code, top := st.call(t, http.MethodPost, "/api/v1/topologies/blank", map[string]any{"name": "e2e-reconnect"})
	require.Equal(t, http.StatusCreated, code, "%v", top)
	tid := top["id"].(string)

	b.do("open the topology", 20*time.Second, chromedp.Navigate(st.APIURL+"/#/t/"+tid))
	b.signIn(dashAdminUser, dashAdminPassword)
	b.do("topology page", 15*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="dmz"]`)))
	b.waitFor("stream live", exists(`#conn[data-state="live"]`), 15*time.Second)

	// Drop every SSE connection and deploy while the page reconnects: the
	// status events arrive live or in the resume replay, never lost.
	st.Proxy.Drop()
	code, _ = st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, code)
	b.waitFor("resumed", `[...document.querySelectorAll('#feed .feed-sys')].some(e => e.textContent.includes('resume complete'))`, 15*time.Second)
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("live again", exists(`#conn[data-state="live"]`), 10*time.Second)

	// Sign out (the stream ends and gives its slot back), take the only slot
	// from Go, sign in again: the page is refused, backs off, then gives up
	// and says why.
	b.click("#logout")
	b.waitFor("signed out", exists("#login-username"), 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for st.SSE.HeldSlots() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	status, release := st.holdSSE(t)
	require.Equal(t, http.StatusOK, status)
	b.signIn(dashAdminUser, dashAdminPassword)
	b.waitFor("refused", exists(`#conn[data-state="offline"]`), 30*time.Second)
	require.Contains(t, b.text("#conn .conn-reason"), "SSE connection limit (1) reached (HTTP 429)")
	b.extraShot("dashboard-offline.png")

	release()
	deadline = time.Now().Add(10 * time.Second)
	for st.SSE.HeldSlots() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b.click("#conn button")
	b.waitFor("live after retry", exists(`#conn[data-state="live"]`), 15*time.Second)
	if probs := b.problems(); len(probs) > 0 {
		b.dumpConsole()
		t.Fatalf("browser problems: %v", errors.New(strings.Join(probs, "; ")))
	}
}

// Every one of the eight ops goes through its form and is applied: the
// payloads the forms build are the ones the API and the worker accept.
func TestDashboardEveryOp(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	code, top := st.call(t, http.MethodPost, "/api/v1/topologies/blank", map[string]any{"name": "e2e-ops"})
	require.Equal(t, http.StatusCreated, code, "%v", top)
	tid := top["id"].(string)
	code, _ = st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, code)

	b := newDashBrowser(t, bin)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	exists := func(sel string) string { return fmt.Sprintf(`document.querySelector('%s') !== null`, jsq(sel)) }
	gone := func(sel string) string { return fmt.Sprintf(`document.querySelector('%s') === null`, jsq(sel)) }
	// choose sets a select like a user would (and fails if the option is missing).
	choose := func(id, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const e = document.getElementById('%s');
			if (![...e.options].some(o => o.value === '%s')) throw new Error('no option %s in #%s');
			e.value = '%s';
			e.dispatchEvent(new Event('change'));
		})()`, jsq(id), jsq(value), jsq(value), jsq(id), jsq(value)))
	}
	applied := 0
	submit := func(op string, fill ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := append([]chromedp.Action[chromedp.Void]{
			choose("op-select", op),
			chromedp.WaitVisible(css(fmt.Sprintf(`#op-form[data-op="%s"]`, op))),
		}, fill...)
		steps = append(steps, chromedp.Click(css("#op-submit")))
		b.do("submit "+op, 10*time.Second, steps...)
		applied++
		b.waitFor(op+" applied", fmt.Sprintf(`document.querySelectorAll('#feed .feed-item[data-event="mutation.applied"]').length >= %d`, applied), 20*time.Second)
		if reason := b.problems(); len(reason) > 0 {
			b.fail("browser problems after %s: %v", op, reason)
		}
	}

	b.do("open the topology", 20*time.Second, chromedp.Navigate(st.APIURL+"/#/t/"+tid))
	b.signIn(dashAdminUser, dashAdminPassword)
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("mutation form", exists(`#op-form`), 10*time.Second)

	submit("add_lan",
		chromedp.SendKeys(css("#f-add_lan-name"), "corp"),
		chromedp.SendKeys(css("#f-add_lan-x"), "360"),
		chromedp.SendKeys(css("#f-add_lan-y"), "40"))
	b.waitFor("corp", exists(`#canvas g.lan[data-name="corp"]`), 10*time.Second)
	submit("add_lan", chromedp.SendKeys(css("#f-add_lan-name"), "lab"))
	b.waitFor("lab", exists(`#canvas g.lan[data-name="lab"]`), 10*time.Second)

	submit("add_decky",
		chromedp.SendKeys(css("#f-add_decky-name"), "web-01"),
		choose("f-add_decky-lan", "corp"),
		choose("f-add_decky-archetype", "web-server"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="ssh"] input`)),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)))
	b.waitFor("web-01", exists(`#canvas g.decky[data-name="web-01"]`), 10*time.Second)

	submit("attach_decky", choose("f-attach_decky-decky", "web-01"), choose("f-attach_decky-lan", "lab"))
	b.waitFor("web-01 ⇄ lab", exists(`#canvas g.link[data-decky="web-01"][data-lan="lab"]`), 10*time.Second)

	submit("update_decky",
		choose("f-update_decky-decky", "web-01"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)),
		chromedp.SendKeys(css("#f-update_decky-patch"), `{"service_config": {"ssh": {"hostname": "bastion"}}}`))
	b.waitFor("web-01 has one service", fmt.Sprintf(`(document.querySelector('%s') || {}).textContent === '1 svc'`,
		jsq(`#canvas g.decky[data-name="web-01"] .decky-svc`)), 10*time.Second)

	submit("detach_decky", choose("f-detach_decky-decky", "web-01"), choose("f-detach_decky-lan", "lab"))
	b.waitFor("link gone", gone(`#canvas g.link[data-decky="web-01"]`), 10*time.Second)

	submit("update_lan", choose("f-update_lan-name", "lab"), chromedp.SendKeys(css("#f-update_lan-new_name"), "lab2"))
	b.waitFor("lab renamed", exists(`#canvas g.lan[data-name="lab2"]`), 10*time.Second)

	submit("remove_decky", choose("f-remove_decky-decky", "web-01"))
	b.waitFor("web-01 gone", gone(`#canvas g.decky[data-name="web-01"]`), 10*time.Second)

	submit("remove_lan", choose("f-remove_lan-name", "lab2"))
	b.waitFor("lab2 gone", gone(`#canvas g.lan[data-name="lab2"]`), 10*time.Second)

	require.Equal(t, "active", b.text("#topo-status"), "no op failed")
	require.Equal(t, fmt.Sprintf("expects v%d", 1+applied), b.text("#cursor"))
	require.Zero(t, len(b.problems()))
}
