package e2e

// The dashboard driven by a real headless Chromium against the whole stack
// in-process: the api (serving the page), a worker (asynq server and its
// fast path) and the SSE process on its own origin, so the page exercises
// tickets, CORS and the CSP exactly as in production. This file holds the
// harness and the main flows; dashboard_findings_test.go checks each finding
// of issue 11.

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
	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/rediskey"
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
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
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
	Redis  *dbtest.Redis
	Keys   rediskey.Keys
}

// startDashStack starts the stack on a fresh schema; tune, when set, adjusts
// the SSE server before it starts.
func startDashStack(t *testing.T, tune func(*sse.Server)) *dashStack {
	t.Helper()
	return startDashStackOn(t, newBackend(t), tune)
}

// startDashStackOn starts the stack on backend b.
func startDashStackOn(t *testing.T, b *backend, tune func(*sse.Server)) *dashStack {
	t.Helper()
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
	return &dashStack{APIURL: apiURL, SSEURL: sseHS.URL, Proxy: proxy, SSE: ss, Tokens: tokens, Admin: admin, Redis: b.Redis, Keys: b.Keys}
}

// call sends a REST request to the api as the admin and returns the status
// and the decoded JSON body.
func (st *dashStack) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	code, raw := st.callRaw(t, method, path, body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return code, out
}

// callList is call for endpoints that answer a JSON array.
func (st *dashStack) callList(t *testing.T, method, path string) (int, []map[string]any) {
	t.Helper()
	code, raw := st.callRaw(t, method, path, nil)
	var out []map[string]any
	_ = json.Unmarshal(raw, &out)
	return code, out
}

func (st *dashStack) callRaw(t *testing.T, method, path string, body any) (int, []byte) {
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
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// blank creates a blank topology and returns its id.
func (st *dashStack) blank(t *testing.T, name string) string {
	t.Helper()
	code, top := st.call(t, http.MethodPost, "/api/v1/topologies/blank", map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, code, "%v", top)
	return top["id"].(string)
}

// status returns a topology's status ("" when the API did not answer 200,
// so that polling survives a loaded machine's hiccup).
func (st *dashStack) status(t *testing.T, tid string) string {
	t.Helper()
	code, v := st.call(t, http.MethodGet, "/api/v1/topologies/"+tid, nil)
	if code != http.StatusOK {
		t.Logf("GET topology: %d %v", code, v)
		return ""
	}
	return v["topology"].(map[string]any)["status"].(string)
}

// live creates a blank topology, deploys it and waits until it is active.
func (st *dashStack) live(t *testing.T, name string) string {
	t.Helper()
	tid := st.blank(t, name)
	code, body := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	require.Eventually(t, func() bool { return st.status(t, tid) == "active" }, 20*time.Second, 20*time.Millisecond)
	return tid
}

// mutate enqueues a mutation (no expected_version) and returns its id.
func (st *dashStack) mutate(t *testing.T, tid, op string, payload map[string]any) string {
	t.Helper()
	code, body := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/mutations", map[string]any{"op": op, "payload": payload})
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	return body["mutation_id"].(string)
}

// mutationState returns a mutation's state ("" when the API did not answer
// 200).
func (st *dashStack) mutationState(t *testing.T, tid, mid string) string {
	t.Helper()
	code, m := st.call(t, http.MethodGet, "/api/v1/topologies/"+tid+"/mutations/"+mid, nil)
	if code != http.StatusOK {
		t.Logf("GET mutation: %d %v", code, m)
		return ""
	}
	return m["state"].(string)
}

// apply enqueues a mutation and waits until it is applied.
func (st *dashStack) apply(t *testing.T, tid, op string, payload map[string]any) string {
	t.Helper()
	mid := st.mutate(t, tid, op, payload)
	require.Eventually(t, func() bool { return st.mutationState(t, tid, mid) == "applied" }, 20*time.Second, 20*time.Millisecond,
		"%s %v not applied", op, payload)
	return mid
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

// heldSlots is how many SSE slots the admin holds right now (the Redis
// sorted set of connection leases, DOMAIN §12).
func (st *dashStack) heldSlots(t *testing.T) int64 {
	t.Helper()
	n, err := st.Redis.Client.ZCard(context.Background(), st.Keys.SSESlots(st.Admin.UUID)).Result()
	require.NoError(t, err)
	return n
}

// dashBrowser drives one headless Chromium tab and remembers what the page
// wrote to its console.
type dashBrowser struct {
	t      *testing.T
	ctx    context.Context // this tab
	root   context.Context // the browser's first, blank tab: parent of every tab
	name   string
	cancel context.CancelFunc

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	done    chan struct{}
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
		// Background tabs must keep their timers (the multi-tab test).
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// The browser starts with a blank tab that stays open: every tab the
	// test uses is its child, so closing one never closes the others.
	root, cancelRoot := chromedp.NewContext(allocCtx)
	if _, err := chromedp.Run(root, chromedp.Title()); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	ctx, cancelTab := chromedp.NewContext(root)
	b := &dashBrowser{t: t, ctx: ctx, root: root, name: "tab1", cancel: cancelTab}
	b.listen()
	t.Cleanup(func() {
		cancelTab()
		<-b.done
		cancelRoot()
		cancelAlloc()
	})
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return b
}

// newTab opens another tab of the same browser (same origin storage,
// BroadcastChannel and Web Locks, as a user's second tab).
func (b *dashBrowser) newTab(name string) *dashBrowser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.root)
	nb := &dashBrowser{t: b.t, ctx: ctx, root: b.root, name: name, cancel: cancel}
	nb.listen()
	b.t.Cleanup(func() {
		cancel()
		<-nb.done
	})
	if _, err := chromedp.Run(ctx, chromedp.Title()); err != nil {
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	return nb
}

// close closes the tab (its page unloads as when a user closes it).
func (b *dashBrowser) close() {
	b.cancel()
	<-b.done
}

// listen starts collecting the tab's console (Console starts the browser
// on its first use, with no timeout, and subscribes).
func (b *dashBrowser) listen() {
	messages := chromedp.Console(b.ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
}

// fail dumps the console and a screenshot, then fails the test.
func (b *dashBrowser) fail(format string, args ...any) {
	b.t.Helper()
	b.dumpConsole()
	if p := b.screenshot(strings.ReplaceAll(b.t.Name(), "/", "-") + "-" + b.name + "-failure.png"); p != "" {
		b.t.Logf("failure screenshot: %s", p)
	}
	b.t.Fatalf("%s: %s", b.name, fmt.Sprintf(format, args...))
}

func (b *dashBrowser) dumpConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		b.t.Logf("%s console: %s (%s:%d)", b.name, m, m.URL, m.Line+1)
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
	}
	b.fail("click %s: %v", sel, err)
}

// clickUntil clicks the element matching sel (looked up afresh each time,
// as lists are redrawn when data arrives) until predicate holds.
func (b *dashBrowser) clickUntil(what, sel, predicate string, limit time.Duration) {
	b.t.Helper()
	b.waitFor(what, fmt.Sprintf(`(() => { if (%s) return true; const e = document.querySelector('%s'); if (e) e.click(); return false; })()`, predicate, jsq(sel)), limit)
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

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into a T.
func dashEval[T any](b *dashBrowser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate %q: %v", expr, err)
	}
	return v
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

// viewport sets the tab's size; phone also emulates touch and a mobile
// viewport.
func (b *dashBrowser) viewport(w, h int64, phone bool) {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if phone {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	b.do(fmt.Sprintf("viewport %dx%d", w, h), 10*time.Second, chromedp.EmulateViewport(w, h, opts...))
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
	b.do("sign in as "+user, 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#login-username")),
		chromedp.SendKeys(chromedp.CSS("#login-username"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
}

// open navigates to the dashboard at hash and signs in as the admin.
func (b *dashBrowser) open(st *dashStack, hash string) {
	b.t.Helper()
	b.do("open "+hash, 20*time.Second, chromedp.Navigate(st.APIURL+"/"+hash))
	b.signIn(dashAdminUser, dashAdminPassword)
}

// problems returns uncaught exceptions, CSP violations and console errors
// seen so far; with network, failed requests (a refused or cut stream, a
// 4xx the test provoked) are tolerated.
func (b *dashBrowser) problems(network bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		switch {
		case m.IsException(), strings.Contains(m.Text, "Content Security Policy"):
			out = append(out, m.String())
		case m.Type == "error" && !(network && strings.Contains(m.Text, "Failed to load resource")):
			out = append(out, m.String())
		}
	}
	return out
}

// noProblems fails the test on any of problems(network).
func (b *dashBrowser) noProblems(network bool) {
	b.t.Helper()
	if probs := b.problems(network); len(probs) > 0 {
		b.dumpConsole()
		b.t.Fatalf("%s: browser problems: %v", b.name, errors.New(strings.Join(probs, "; ")))
	}
}

// waitForForm waits until the mutation form takes input (the stream is
// live).
func (b *dashBrowser) waitForForm() {
	b.t.Helper()
	b.waitFor("mutation form", exists(`#op-form`)+` && !document.querySelector('#mutate-fields').disabled`, 15*time.Second)
}

// jsq quotes s for use inside a JavaScript string literal in a selector.
func jsq(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, `"`, `\"`).Replace(s)
}

// exists is a predicate: an element matches sel.
func exists(sel string) string { return fmt.Sprintf(`document.querySelector('%s') !== null`, jsq(sel)) }

// gone is a predicate: no element matches sel.
func gone(sel string) string { return fmt.Sprintf(`document.querySelector('%s') === null`, jsq(sel)) }

// choose sets a select like a user would (and fails if the option is missing).
func choose(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const e = document.getElementById('%s');
		if (![...e.options].some(o => o.value === '%s')) throw new Error('no option %s in #%s');
		e.value = '%s';
		e.dispatchEvent(new Event('change'));
	})()`, jsq(id), jsq(value), jsq(value), jsq(id), jsq(value)))
}

// css is shorthand for a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func TestDashboardEndToEnd(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	b := newDashBrowser(t, bin)

	// Sign in.
	b.do("open the dashboard", 20*time.Second,
		chromedp.Navigate(st.APIURL+"/"),
		chromedp.WaitVisible(css("#login-username")),
	)
	b.extraShot("dashboard-login.png")
	b.signIn(dashAdminUser, dashAdminPassword)
	b.do("list page", 30*time.Second, chromedp.WaitVisible(css("#create-name")))
	// The overview stream connects to the SSE origin with a ticket.
	b.waitFor("stream live", exists(`#conn[data-state="live"]`), 15*time.Second)

	// Create a blank topology; it shows up in the list, pending.
	const name = "e2e-maze"
	row := fmt.Sprintf(`tr[data-topology-name="%s"]`, name)
	b.do("create a blank topology", 30*time.Second,
		chromedp.SendKeys(css("#create-name"), name),
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css(row)),
	)
	require.Equal(t, "pending", b.text(row+" .badge"))

	// Open it: the canvas shows the DMZ LAN and its gateway decky.
	b.click(row + " a.t-name")
	b.do("open the topology", 30*time.Second,
		chromedp.WaitVisible(css(`#canvas g.lan[data-name="dmz"]`)),
		chromedp.WaitVisible(css(`#canvas g.decky[data-name="dmz-gateway"]`)),
	)
	require.Equal(t, name, b.text("#topo-name"))
	require.Contains(t, b.text(`#canvas g.lan[data-name="dmz"] .lan-subnet`), "/24")
	require.Equal(t, "DMZ", b.text(`#canvas g.lan[data-name="dmz"] .dmz-pill-text`))
	require.Equal(t, "dmz-gateway", b.text(`#canvas g.decky[data-name="dmz-gateway"] .decky-name`))
	require.True(t, strings.HasSuffix(b.text(`#canvas g.decky[data-name="dmz-gateway"] .decky-ip`), ".2"))

	// Deploy: the status badge turns active through the live stream, and
	// the mutation form opens.
	b.click(".topo-actions .act-deploy")
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("status event in the feed", exists(`#feed .feed-item[data-event="status"]`), 10*time.Second)
	b.waitFor("mutation form", exists(`#op-form[data-op="add_lan"]`), 10*time.Second)
	b.waitForForm()
	// This tab asked for it: no "changed elsewhere" notice.
	require.Equal(t, int64(0), dashEval[int64](b, `document.querySelectorAll('#banner-status').length`))

	// add_lan through the form: followed to "applied" under the form, new
	// LAN on the canvas.
	b.do("submit add_lan", 30*time.Second,
		chromedp.SendKeys(css("#f-add_lan-name"), "corp"),
		chromedp.Click(css("#op-submit")),
	)
	b.waitFor("add_lan applied in the form", exists(`#op-outcomes li[data-op="add_lan"][data-state="applied"]`), 20*time.Second)
	b.waitFor("corp on the canvas", exists(`#canvas g.lan[data-name="corp"]`), 10*time.Second)
	require.Contains(t, b.text(`#canvas g.lan[data-name="corp"] .lan-subnet`), "172.16.")
	require.Contains(t, b.text(`#op-outcomes li[data-op="add_lan"] .outcome-text`), "Applied add LAN corp")

	// add_decky with two services picked from the catalog, homed on corp.
	b.do("open add_decky", 30*time.Second,
		choose("op-select", "add_decky"),
		chromedp.WaitVisible(css(`#op-form[data-op="add_decky"]`)),
		chromedp.SendKeys(css("#f-add_decky-name"), "web-01"),
		choose("f-add_decky-lan", "corp"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="ssh"] input`)),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)),
	)
	b.extraShot("dashboard-add-decky.png")
	b.do("submit add_decky", 30*time.Second, chromedp.Click(css("#op-submit")))
	b.waitFor("web-01 on the canvas", exists(`#canvas g.decky[data-name="web-01"]`), 20*time.Second)
	require.Equal(t, "2 svc", b.text(`#canvas g.decky[data-name="web-01"] .decky-svc`))

	// attach_decky: the gateway bridges into corp, drawn as a link.
	b.do("attach the gateway to corp", 30*time.Second,
		choose("op-select", "attach_decky"),
		chromedp.WaitVisible(css(`#op-form[data-op="attach_decky"]`)),
		choose("f-attach_decky-decky", "dmz-gateway"),
		choose("f-attach_decky-lan", "corp"),
		chromedp.Click(css("#op-submit")),
	)
	b.waitFor("bridge link", exists(`#canvas g.link[data-decky="dmz-gateway"][data-lan="corp"]`), 20*time.Second)

	// A rejected mutation: the form says why in plain words, the feed too,
	// and the topology degrades (with a Re-check offered).
	b.do("submit a duplicate add_lan", 30*time.Second,
		choose("op-select", "add_lan"),
		chromedp.WaitVisible(css(`#op-form[data-op="add_lan"]`)),
		chromedp.SendKeys(css("#f-add_lan-name"), "corp"),
	)
	// The form warns before sending, but lets the operator send anyway.
	b.waitFor("duplicate-name warning", `!document.querySelector('#f-add_lan-name-warn').hidden`, 5*time.Second)
	b.do("send it anyway", 30*time.Second, chromedp.Click(css("#op-submit")))
	b.waitFor("failure in the form", exists(`#op-outcomes li[data-op="add_lan"][data-state="failed"]`), 20*time.Second)
	require.Equal(t, "A LAN named “corp” already exists in this topology; choose another name.",
		b.text(`#op-outcomes li[data-state="failed"] .outcome-text`))
	b.waitFor("mutation.failed in the feed", exists(`#feed .feed-item[data-event="mutation.failed"] .reason`), 10*time.Second)
	require.Contains(t, b.text(`#feed .feed-item[data-event="mutation.failed"] .reason`), "A LAN named “corp” already exists")
	b.waitFor("status degraded", exists(`#topo-status[data-status="degraded"]`), 20*time.Second)
	b.waitFor("failure in the mutation list", exists(`#mutations tr[data-state="failed"] .reason`), 10*time.Second)
	b.waitFor("degraded banner with Re-check", exists(`#banner-degraded .act-heal-banner`), 10*time.Second)
	require.Contains(t, b.text("#banner-degraded"), "A LAN named “corp” already exists")

	// Every accepted enqueue advanced the cursor by one: 4 mutations after v1.
	require.Equal(t, "expects v5", b.text("#cursor"))
	require.Equal(t, "live", b.text("#conn .conn-text"))
	require.Equal(t, "0", b.text("#inflight-count"))
	b.noProblems(false)

	// Back on the list the status is live too.
	b.click(`.crumbs a[href="#/"]`)
	b.do("back to the list", 30*time.Second, chromedp.WaitVisible(css(row)))
	b.waitFor("degraded in the list", exists(row+` .badge[data-status="degraded"]`), 10*time.Second)
	b.extraShot("dashboard-list.png")

	// Leave the topology page on screen for the screenshot.
	b.click(row + " a.t-name")
	b.do("reopen the topology", 30*time.Second, chromedp.WaitVisible(css(`#canvas g.decky[data-name="web-01"]`)))
	b.click(`#canvas g.decky[data-name="dmz-gateway"]`)
	b.do("decky details", 30*time.Second, chromedp.WaitVisible(css(`#details .kv`)))
	// The reopened page shows the recent history in its feed.
	b.waitFor("history in the feed", exists(`#feed .feed-item[data-event="mutation.failed"]`), 10*time.Second)
	if p := b.screenshot("dashboard.png"); p != "" {
		t.Logf("screenshot: %s", p)
	}

	// A viewer watches the same topology read-only: no forms, no buttons.
	b.click("#logout")
	b.signIn(dashViewerUser, dashAdminPassword)
	// Signing in keeps the deep link: the topology page comes back first.
	b.do("viewer lands on the topology", 30*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="corp"]`)))
	b.click(`.crumbs a[href="#/"]`)
	b.do("viewer list", 30*time.Second, chromedp.WaitVisible(css(row)))
	b.waitFor("viewer list is read-only", `document.querySelector('#create-form') === null && document.querySelector('.readonly-note') !== null`, 5*time.Second)
	require.Equal(t, "viewer · read-only", b.text(".user-chip .role"))
	b.waitFor("no admin links for viewers", gone(`.nav a[href="#/users"]`)+` && `+gone(`.nav a[href="/monitoring"]`), 5*time.Second)
	b.click(row + " a.t-name")
	b.do("viewer topology", 30*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="corp"]`)))
	b.waitFor("viewer stream live", exists(`#conn[data-state="live"]`), 15*time.Second)
	b.waitFor("no mutation form for viewers", `document.querySelector('#op-form') === null && document.querySelector('#mutate .readonly-note') !== null && document.querySelector('.act-teardown') === null && document.querySelector('.act-heal-banner') === null`, 5*time.Second)

	// A user with a forced password change gets the change form first, and
	// lands on the list after it (signed in again with the new password).
	b.click("#logout")
	b.signIn(dashRookieUser, dashAdminPassword)
	b.do("change password", 30*time.Second,
		chromedp.WaitVisible(css("#cp-new")),
		chromedp.SendKeys(css("#cp-new"), "a brand new passphrase"),
		chromedp.SendKeys(css("#cp-confirm"), "a brand new passphrase"),
		chromedp.Click(css("#cp-submit")),
		chromedp.WaitVisible(css(".user-chip .user-name")),
	)
	require.Equal(t, dashRookieUser, b.text(".user-chip .user-name"))
	b.noProblems(false)
}

// The page's own reconnect: a dropped stream comes back at once with a fresh
// ticket and resumes after the last event it saw. When every slot of the
// user's connection cap is taken elsewhere, the indicator says so (n of N)
// and keeps asking by itself, so it is live again as soon as a slot frees.
func TestDashboardReconnectAndRefusal(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, func(s *sse.Server) { s.MaxPerUser = 1 })
	b := newDashBrowser(t, bin)
	tid := st.blank(t, "e2e-reconnect")

	// Activity elsewhere first: one stream carries every topology's events
	// (it serves all pages and tabs), so the page has a position to resume
	// from when the stream drops.
	b.open(st, "#/")
	b.waitFor("stream live", exists(`#conn[data-state="live"]`), 15*time.Second)
	st.live(t, "e2e-elsewhere")
	b.waitFor("event seen on the list", exists(`tr[data-topology-name="e2e-elsewhere"] .badge[data-status="active"]`), 15*time.Second)
	b.do("open the topology", 30*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '#/t/`+tid+`'`))
	b.do("topology page", 30*time.Second, chromedp.WaitVisible(css(`#canvas g.lan[data-name="dmz"]`)))

	// Drop every SSE connection and deploy while the page reconnects: the
	// status events arrive live or in the resume replay, never lost.
	st.Proxy.Drop()
	code, _ := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/deploy", nil)
	require.Equal(t, http.StatusAccepted, code)
	b.waitFor("resumed", `[...document.querySelectorAll('#feed .feed-sys')].some(e => e.textContent.includes('resume complete'))`, 15*time.Second)
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("live again", exists(`#conn[data-state="live"]`), 10*time.Second)
	b.waitFor("mutation form open", exists(`#op-form`)+` && !document.querySelector('#mutate-fields').disabled`, 10*time.Second)

	// Sign out (the stream ends and gives its slot back), take the only slot
	// from Go, sign in again: the page is refused, says why, and pauses the
	// mutation form.
	b.click("#logout")
	b.waitFor("signed out", exists("#login-username"), 10*time.Second)
	require.Eventually(t, func() bool { return st.heldSlots(t) == 0 }, 10*time.Second, 20*time.Millisecond)
	status, release := st.holdSSE(t)
	require.Equal(t, http.StatusOK, status)
	b.signIn(dashAdminUser, dashAdminPassword)
	b.waitFor("no free stream", exists(`#conn[data-state="full"]`), 30*time.Second)
	require.Contains(t, b.text("#conn .conn-reason"), "SSE connection limit (1) reached")
	b.waitFor("form paused", exists(`#mutate-fields:disabled`)+` && !document.querySelector('#mutate-offline').hidden`, 10*time.Second)
	require.Contains(t, b.text("#mutate-offline"), "every live stream of your account is in use")
	// On a phone the reason is one tap away, inside the screen.
	b.viewport(390, 844, true)
	b.click("#conn .conn-btn")
	b.waitFor("explanation", exists("#conn-pop"), 5*time.Second)
	require.Contains(t, b.text("#conn-pop"), "All 1 of 1 live streams of your account are in use")
	require.True(t, dashEval[bool](b, `(() => { const r = document.querySelector('#conn-pop').getBoundingClientRect(); return r.left >= 0 && r.right <= document.documentElement.clientWidth; })()`),
		"the explanation fits the phone screen")
	b.extraShot("dashboard-full.png")

	// The slot frees: the page is live again by itself, the form opens.
	release()
	b.waitFor("live after the slot freed", exists(`#conn[data-state="live"]`), 30*time.Second)
	b.waitFor("form open again", `!document.querySelector('#mutate-fields').disabled`, 10*time.Second)
	require.Eventually(t, func() bool { return st.heldSlots(t) == 1 }, 10*time.Second, 20*time.Millisecond)
	b.noProblems(true)
}

// Every one of the eight ops goes through its form and is applied: the
// payloads the forms build are the ones the API and the worker accept.
func TestDashboardEveryOp(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-ops")

	b := newDashBrowser(t, bin)
	applied := 0
	submit := func(op string, fill ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := append([]chromedp.Action[chromedp.Void]{
			choose("op-select", op),
			chromedp.WaitVisible(css(fmt.Sprintf(`#op-form[data-op="%s"]`, op))),
		}, fill...)
		steps = append(steps, chromedp.Click(css("#op-submit")))
		b.do("submit "+op, 30*time.Second, steps...)
		applied++
		b.waitFor(op+" applied", fmt.Sprintf(`document.querySelectorAll('#feed .feed-item[data-event="mutation.applied"]:not(.feed-hist)').length >= %d`, applied), 20*time.Second)
		b.waitFor(op+" in the outcome list", fmt.Sprintf(`(document.querySelector('#op-outcomes li') || {dataset: {}}).dataset.state === 'applied' && document.querySelector('#op-outcomes li').dataset.op === '%s'`, op), 20*time.Second)
		if reason := b.problems(false); len(reason) > 0 {
			b.fail("browser problems after %s: %v", op, reason)
		}
	}

	b.open(st, "#/t/"+tid)
	b.waitFor("status active", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitForForm()

	submit("add_lan", chromedp.SendKeys(css("#f-add_lan-name"), "corp"))
	b.waitFor("corp", exists(`#canvas g.lan[data-name="corp"]`), 10*time.Second)
	submit("add_lan", chromedp.SendKeys(css("#f-add_lan-name"), "lab"), chromedp.SendKeys(css("#f-add_lan-subnet"), "10.77.0.0/24"))
	b.waitFor("lab", exists(`#canvas g.lan[data-name="lab"]`), 10*time.Second)
	require.Equal(t, "10.77.0.0/24", b.text(`#canvas g.lan[data-name="lab"] .lan-subnet`))

	submit("add_decky",
		chromedp.SendKeys(css("#f-add_decky-name"), "web-01"),
		choose("f-add_decky-lan", "corp"),
		choose("f-add_decky-archetype", "web-server"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="ssh"] input`)),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)))
	b.waitFor("web-01", exists(`#canvas g.decky[data-name="web-01"]`), 10*time.Second)

	submit("attach_decky", choose("f-attach_decky-decky", "web-01"), choose("f-attach_decky-lan", "lab"), chromedp.SendKeys(css("#f-attach_decky-ip"), "10.77.0.9"))
	b.waitFor("web-01 ⇄ lab", exists(`#canvas g.link[data-decky="web-01"][data-lan="lab"]`), 10*time.Second)
	require.Equal(t, "10.77.0.9", b.text(`#canvas g.link[data-decky="web-01"][data-lan="lab"] .link-label`))

	submit("update_decky",
		choose("f-update_decky-decky", "web-01"),
		chromedp.Click(css(`#op-form .svc-chip[data-service="http"] input`)),
		chromedp.SetValue(css("#f-update_decky-patch"), `{"service_config": {"ssh": {"hostname": "bastion"}}}`))
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
	b.noProblems(false)
}
