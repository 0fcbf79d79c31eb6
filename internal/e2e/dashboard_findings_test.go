package e2e

// One test per finding of issue 11 ("found by trying the dashboard as a new
// operator"), each against the whole stack in a real headless Chromium.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/sse"
)

// uuidRE finds a UUID in text the operator sees.
var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// holdAccepted makes the page's fetch hold every 202 of POST …/mutations
// until the page has shown that mutation's mutation.applied or
// mutation.failed event in its feed: the worker's answer always beats the
// API's. window.__held counts the answers held that way.
const holdAccepted = `(() => {
	window.__held = 0;
	const orig = window.fetch;
	window.fetch = async function (url, opts) {
		const res = await orig.apply(this, arguments);
		if (opts && opts.method === 'POST' && /\/mutations$/.test(String(url)) && res.status === 202) {
			const id = (await res.clone().json()).mutation_id;
			const sel = '#feed li[data-mutation="' + id + '"][data-event="mutation.applied"], #feed li[data-mutation="' + id + '"][data-event="mutation.failed"]';
			while (!document.querySelector(sel)) await new Promise((r) => setTimeout(r, 10));
			window.__held++;
		}
		return res;
	};
	return true;
})()`

// countPosts makes the page count its POSTs to …/mutations in
// window.__posts (a form that refuses input must send nothing).
const countPosts = `(() => {
	window.__posts = 0;
	const orig = window.fetch;
	window.fetch = function (url, opts) {
		if (opts && opts.method === 'POST' && /\/mutations$/.test(String(url))) window.__posts++;
		return orig.apply(this, arguments);
	};
	return true;
})()`

// Finding 1: queue several mutations quickly while every mutation.applied
// arrives before the POST's 202: the In flight card ends empty (it always
// equals the server's open mutations) and every outcome reads applied.
func TestDashboardInFlightWhenAppliedBeatsAccepted(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-burst")
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitForForm()
	require.True(t, dashEval[bool](b, holdAccepted))

	const n = 5
	for i := 0; i < n; i++ {
		b.do(fmt.Sprintf("queue lan-%d", i), 10*time.Second,
			chromedp.SendKeys(css("#f-add_lan-name"), fmt.Sprintf("lan-%d", i)),
			chromedp.Click(css("#op-submit")))
	}
	b.waitFor("every 202 held until its applied event", fmt.Sprintf(`window.__held === %d`, n), 30*time.Second)
	b.waitFor("every outcome applied", fmt.Sprintf(`document.querySelectorAll('#op-outcomes li[data-state="applied"]').length === %d`, n), 10*time.Second)
	b.waitFor("In flight empty", `document.querySelector('#inflight-count').textContent === '0' && document.querySelectorAll('#inflight li').length === 0`, 10*time.Second)
	// The server agrees: nothing is open.
	code, open := st.callList(t, http.MethodGet, "/api/v1/topologies/"+tid+"/mutations?state=pending")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, open)
	b.waitFor("every row applied in the table", fmt.Sprintf(`document.querySelectorAll('#mutations tr[data-state="applied"]').length === %d`, n), 10*time.Second)
	require.Equal(t, fmt.Sprintf("expects v%d", 1+n), b.text("#cursor"))
	b.noProblems(false)
}

// Finding 2: a failing mutation is reported where it was queued, in plain
// words naming the LAN or decky and without ids — and in a toast when the
// form is gone by the time it fails.
func TestDashboardFailureInPlainWords(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-plain")
	st.apply(t, tid, "add_lan", map[string]any{"name": "corp"})
	st.apply(t, tid, "add_decky", map[string]any{"name": "web-01", "lan": "corp", "services": []string{"ssh"}})
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitForForm()

	// remove_lan of an occupied LAN.
	b.do("remove corp", 30*time.Second,
		choose("op-select", "remove_lan"),
		chromedp.WaitVisible(css(`#op-form[data-op="remove_lan"]`)),
		choose("f-remove_lan-name", "corp"),
		chromedp.Click(css("#op-submit")))
	b.waitFor("failure under the form", exists(`#op-outcomes li[data-op="remove_lan"][data-state="failed"]`), 20*time.Second)
	require.Equal(t, "LAN “corp” cannot be removed: it is the home LAN of decky “web-01”. Remove “web-01” (and any other decky living there) first.",
		b.text(`#op-outcomes li[data-op="remove_lan"] .outcome-text`))

	// A post-apply validation failure (its raw reason carries the topology
	// id): renaming a LAN that has members.
	b.do("rename corp", 30*time.Second,
		choose("op-select", "update_lan"),
		chromedp.WaitVisible(css(`#op-form[data-op="update_lan"]`)),
		choose("f-update_lan-name", "corp"),
		chromedp.SendKeys(css("#f-update_lan-new_name"), "corp2"),
		chromedp.Click(css("#op-submit")))
	b.waitFor("rename failure", exists(`#op-outcomes li[data-op="update_lan"][data-state="failed"]`), 20*time.Second)
	require.Contains(t, b.text(`#op-outcomes li[data-op="update_lan"] .outcome-text`),
		"LAN “corp” cannot be renamed to “corp2” while deckies are on it")

	// A duplicate decky name.
	b.do("add web-01 again", 30*time.Second,
		choose("op-select", "add_decky"),
		chromedp.WaitVisible(css(`#op-form[data-op="add_decky"]`)),
		chromedp.SendKeys(css("#f-add_decky-name"), "web-01"),
		choose("f-add_decky-lan", "corp"),
		chromedp.Click(css("#op-submit")))
	b.waitFor("duplicate failure", exists(`#op-outcomes li[data-op="add_decky"][data-state="failed"]`), 20*time.Second)
	require.Equal(t, "A decky named “web-01” already exists in this topology; choose another name.",
		b.text(`#op-outcomes li[data-op="add_decky"] .outcome-text`))

	// Nothing the operator reads carries an id.
	b.waitFor("reasons in the table", `document.querySelectorAll('#mutations tr[data-state="failed"] .reason').length === 3`, 10*time.Second)
	b.waitFor("degraded banner", exists("#banner-degraded"), 10*time.Second)
	visible := dashEval[string](b, `document.querySelector('main').innerText`)
	require.False(t, uuidRE.MatchString(visible), "an id on the page: %s", uuidRE.FindString(visible))
	require.NotContains(t, visible, "post-apply validation failed")
	require.NotContains(t, visible, "MutationError")

	// The form is gone when the answer comes: a toast says it instead.
	require.True(t, dashEval[bool](b, `(() => {
		const orig = window.fetch;
		window.fetch = async function (url, opts) {
			const res = await orig.apply(this, arguments);
			if (opts && opts.method === 'POST' && /\/mutations$/.test(String(url)) && res.status === 202) {
				location.hash = '#/';
				while (!document.querySelector('#topology-rows tr')) await new Promise((r) => setTimeout(r, 10));
			}
			return res;
		};
		return true;
	})()`))
	b.do("remove corp, then leave", 30*time.Second,
		choose("op-select", "remove_lan"),
		chromedp.WaitVisible(css(`#op-form[data-op="remove_lan"]`)),
		choose("f-remove_lan-name", "corp"),
		chromedp.Click(css("#op-submit")))
	b.waitFor("the list", exists(`#topology-rows tr[data-topology-name="e2e-plain"]`), 10*time.Second)
	b.waitFor("failure toast", exists(`.toast-error .toast-msg`), 20*time.Second)
	toast := b.text(`.toast-error .toast-msg`)
	require.Contains(t, toast, "Failed: remove LAN corp in e2e-plain.")
	require.Contains(t, toast, "it is the home LAN of decky “web-01”")
	require.False(t, uuidRE.MatchString(toast))
	b.noProblems(false)
}

// Finding 4: input that no state can make valid is refused next to its
// field before anything is sent; the API's 422 {detail, field} lands on
// the same field.
func TestDashboardMalformedInputRefusedInForm(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-malformed")
	st.apply(t, tid, "add_lan", map[string]any{"name": "corp", "subnet": "10.50.0.0/24"})
	st.apply(t, tid, "add_decky", map[string]any{"name": "web-01", "lan": "corp"})
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitForForm()
	require.True(t, dashEval[bool](b, countPosts))

	refused := func(field, wantErr string) {
		t.Helper()
		b.waitFor(field+" refused", fmt.Sprintf(`!document.querySelector('#%s-error').hidden`, field), 5*time.Second)
		require.Contains(t, b.text("#"+field+"-error"), wantErr)
		require.Equal(t, "true", dashEval[string](b, fmt.Sprintf(`document.getElementById('%s').getAttribute('aria-invalid')`, field)))
		require.Equal(t, field, dashEval[string](b, `document.activeElement.id`), "focus on the refused field")
		require.Contains(t, dashEval[string](b, fmt.Sprintf(`document.getElementById('%s').getAttribute('aria-describedby')`, field)), field+"-error")
	}
	b.do("a /33", 30*time.Second,
		chromedp.SendKeys(css("#f-add_lan-name"), "lab"),
		chromedp.SendKeys(css("#f-add_lan-subnet"), "10.0.0.0/33"),
		chromedp.Click(css("#op-submit")))
	refused("f-add_lan-subnet", "/33 is not a valid prefix length")
	// Typing clears the error.
	b.do("fix it", 5*time.Second, chromedp.SendKeys(css("#f-add_lan-subnet"), "\b"))
	b.waitFor("error cleared", `document.querySelector('#f-add_lan-subnet-error').hidden`, 5*time.Second)
	b.do("host bits", 30*time.Second, chromedp.SetValue(css("#f-add_lan-subnet"), "10.60.0.5/24"), chromedp.Click(css("#op-submit")))
	refused("f-add_lan-subnet", "host bits set; the network is 10.60.0.0/24")
	b.do("a bad IP", 30*time.Second,
		choose("op-select", "attach_decky"),
		chromedp.WaitVisible(css(`#op-form[data-op="attach_decky"]`)),
		choose("f-attach_decky-decky", "web-01"),
		choose("f-attach_decky-lan", "dmz"),
		chromedp.SendKeys(css("#f-attach_decky-ip"), "10.0.0.300"),
		chromedp.Click(css("#op-submit")))
	refused("f-attach_decky-ip", "10.0.0.300 is not an IPv4 address")
	b.do("an IP outside the LAN", 30*time.Second, chromedp.SetValue(css("#f-attach_decky-ip"), "10.50.0.9"), chromedp.Click(css("#op-submit")))
	refused("f-attach_decky-ip", "is not inside LAN “dmz”")
	require.Equal(t, int64(0), dashEval[int64](b, `window.__posts`), "nothing was sent")

	// The API refuses with 422 {detail, field} (D2 extended): here answered
	// by the page's fetch, so this runs whatever the backend's build; the
	// real answer is checked in TestDashboardMalformedSubnet422FromAPI.
	require.True(t, dashEval[bool](b, `(() => {
		const orig = window.fetch;
		window.fetch = function (url, opts) {
			if (opts && opts.method === 'POST' && /\/mutations$/.test(String(url)) && String(opts.body).includes('10.70.0.0/24')) {
				return Promise.resolve(new Response(JSON.stringify({ detail: "payload.subnet: SUBNET_MALFORMED: '10.70.0.0/24' is not a network", field: 'payload.subnet' }),
					{ status: 422, headers: { 'Content-Type': 'application/json' } }));
			}
			return orig.apply(this, arguments);
		};
		return true;
	})()`))
	b.do("a subnet the API refuses", 30*time.Second,
		choose("op-select", "add_lan"),
		chromedp.WaitVisible(css(`#op-form[data-op="add_lan"]`)),
		chromedp.SendKeys(css("#f-add_lan-name"), "lab"),
		chromedp.SendKeys(css("#f-add_lan-subnet"), "10.70.0.0/24"),
		chromedp.Click(css("#op-submit")))
	refused("f-add_lan-subnet", "“10.70.0.0/24” is not a valid IPv4 network for LAN “lab”")
	b.waitFor("not queued", exists(`#op-outcomes li[data-state="refused"]`), 5*time.Second)
	require.Equal(t, "active", b.text("#topo-status"))
	b.noProblems(false)
}

// Finding 4, the API's side: a malformed subnet is refused at enqueue with
// 422 naming the field (DOMAIN §4.2, D2 extended), which the form shows
// next to the subnet field. Skipped while the enqueue-time check is not in
// this build (another engineer builds it): the same mutation is then
// accepted and fails later.
func TestDashboardMalformedSubnet422FromAPI(t *testing.T) {
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-422")
	code, body := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/mutations",
		map[string]any{"op": "add_lan", "payload": map[string]any{"name": "lab", "subnet": "10.0.0.0/33"}})
	if code == http.StatusAccepted {
		t.Skip("enqueue-time CIDR validation (DOMAIN §4.2, D2 extended) is not in this build: the API accepted 10.0.0.0/33; enable when it lands")
	}
	require.Equal(t, http.StatusUnprocessableEntity, code, "%v", body)
	require.Equal(t, "payload.subnet", body["field"], "%v", body)
	require.Contains(t, body["detail"], "SUBNET_MALFORMED")
	require.Equal(t, "active", st.status(t, tid), "the topology is untouched")
}

// startDemoStack seeds the demo topology with the real `migrate -demo`
// (cmd/migrate), then starts the stack on that schema; the worker deploys
// the demo. Returns the stack and the demo's id, once it is active.
func startDemoStack(t *testing.T) (*dashStack, string) {
	t.Helper()
	dsn := dbtest.URL(t)
	rd := dbtest.NewRedis(t)
	bin := filepath.Join(t.TempDir(), "migrate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/decnet/mazenet/cmd/migrate").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/migrate: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-demo")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn, "REDIS_URL="+rd.URL, "DECNET_REDIS_PREFIX="+rd.Prefix,
		"DECNET_QUEUE="+rd.Queue, "DECNET_ADMIN_PASSWORD=", "DECNET_LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate -demo: %v\n%s", err, out)
	}
	st := startDashStackOn(t, newBackendAt(t, dsn, rd), nil)
	code, list := st.call(t, http.MethodGet, "/api/v1/topologies", nil)
	require.Equal(t, http.StatusOK, code)
	var tid string
	for _, item := range list["data"].([]any) {
		if m := item.(map[string]any); m["name"] == "demo" {
			tid = m["id"].(string)
		}
	}
	require.NotEmpty(t, tid, "the demo topology")
	require.Eventually(t, func() bool { return st.status(t, tid) == "active" }, 30*time.Second, 20*time.Millisecond)
	return st, tid
}

// canvasCheck measures the drawn canvas: boxes that overlap, deckies
// outside their LAN, links that pass over a box they do not connect, and
// the smallest label in screen pixels.
const canvasCheck = `(() => {
	const svg = document.querySelector('#canvas');
	const rect = (el) => el.getBoundingClientRect();
	const deckies = [...svg.querySelectorAll('g.decky')].map((g) => ({ name: g.dataset.name, r: rect(g.querySelector('.decky-box')), lan: g.closest('g.lan').dataset.name }));
	const lans = [...svg.querySelectorAll('g.lan:not(.orphan)')].map((g) => ({ name: g.dataset.name, r: rect(g.querySelector(':scope > .lan-box')) }));
	const ov = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
	const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
	const problems = [];
	for (let i = 0; i < deckies.length; i++) for (let j = i + 1; j < deckies.length; j++) if (ov(deckies[i].r, deckies[j].r)) problems.push('deckies ' + deckies[i].name + ' and ' + deckies[j].name + ' overlap');
	for (let i = 0; i < lans.length; i++) for (let j = i + 1; j < lans.length; j++) if (ov(lans[i].r, lans[j].r)) problems.push('LANs ' + lans[i].name + ' and ' + lans[j].name + ' overlap');
	for (const d of deckies) { const l = lans.find((x) => x.name === d.lan); if (l && !inside(d.r, l.r)) problems.push(d.name + ' is outside LAN ' + d.lan); }
	const m = svg.getScreenCTM();
	for (const g of svg.querySelectorAll('g.link')) {
		const path = g.querySelector('.link-path');
		const len = path.getTotalLength();
		const home = deckies.find((d) => d.name === g.dataset.decky);
		for (let s = 2; s < len - 2; s += 3) {
			const p = path.getPointAtLength(s);
			const x = m.a * p.x + m.c * p.y + m.e, y = m.b * p.x + m.d * p.y + m.f;
			const hit = (r) => x > r.left + 1 && x < r.right - 1 && y > r.top + 1 && y < r.bottom - 1;
			for (const d of deckies) if (d !== home && hit(d.r)) { problems.push('link ' + g.dataset.decky + '→' + g.dataset.lan + ' crosses decky ' + d.name); break; }
			for (const l of lans) if (l.name !== g.dataset.lan && l.name !== home.lan && hit(l.r)) { problems.push('link ' + g.dataset.decky + '→' + g.dataset.lan + ' crosses LAN ' + l.name); break; }
		}
	}
	const px = [...svg.querySelectorAll('text')].map((t) => parseFloat(getComputedStyle(t).fontSize) * m.a);
	return JSON.stringify({ deckies: deckies.length, lans: lans.length, links: svg.querySelectorAll('g.link').length, minTextPx: Math.min(...px), problems: [...new Set(problems)] });
})()`

type canvasReport struct {
	Deckies   int      `json:"deckies"`
	LANs      int      `json:"lans"`
	Links     int      `json:"links"`
	MinTextPx float64  `json:"minTextPx"`
	Problems  []string `json:"problems"`
}

func (b *dashBrowser) canvas() canvasReport {
	b.t.Helper()
	var r canvasReport
	require.NoError(b.t, json.Unmarshal([]byte(dashEval[string](b, canvasCheck)), &r))
	return r
}

// Finding 5: the seeded demo draws no box on another and its text is at
// least 11 px at Fit, on a desktop and on a phone; a bridge link that would
// cross a LAN is routed around it.
func TestDashboardDemoLayout(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st, tid := startDemoStack(t)
	b := newDashBrowser(t, bin)
	b.viewport(1280, 800, false)
	b.open(st, "#/t/"+tid)
	b.waitFor("the demo drawn", `document.querySelectorAll('#canvas g.decky').length === 3`, 15*time.Second)
	r := b.canvas()
	require.Empty(t, r.Problems)
	require.Equal(t, 2, r.LANs)
	require.Equal(t, 1, r.Links)
	require.GreaterOrEqual(t, r.MinTextPx, 10.99, "text at Fit")

	// A LAN beyond corp, bridged from the DMZ: a straight link would cross
	// corp and its deckies; the drawn one goes around.
	st.apply(t, tid, "add_lan", map[string]any{"name": "lab", "x": 900, "y": 40})
	st.apply(t, tid, "attach_decky", map[string]any{"decky": "dmz-gateway", "lan": "lab"})
	b.waitFor("the second link", `document.querySelectorAll('#canvas g.link').length === 2`, 15*time.Second)
	b.do("fit", 5*time.Second, chromedp.Click(css("#canvas-fit")))
	r = b.canvas()
	require.Empty(t, r.Problems)
	require.GreaterOrEqual(t, r.MinTextPx, 10.99)

	// Zooming out stops where text would drop below 11 px.
	for i := 0; i < 6; i++ {
		b.do("zoom out", 5*time.Second, chromedp.Click(css("#canvas-zoom-out")))
	}
	require.GreaterOrEqual(t, b.canvas().MinTextPx, 10.99, "zoom is clamped")

	b.viewport(390, 844, true)
	b.do("fit on a phone", 5*time.Second, chromedp.Click(css("#canvas-fit")))
	r = b.canvas()
	require.Empty(t, r.Problems)
	require.GreaterOrEqual(t, r.MinTextPx, 10.99, "text at Fit on a phone")
	b.noProblems(false)
}

// Finding 5: dragging a decky moves it with exactly one update_decky
// carrying the new position, and it is drawn there after a reload.
func TestDashboardDragMovesDecky(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-drag")
	st.apply(t, tid, "add_lan", map[string]any{"name": "corp", "x": 360, "y": 40})
	st.apply(t, tid, "add_decky", map[string]any{"name": "web-01", "lan": "corp"})
	st.apply(t, tid, "add_decky", map[string]any{"name": "db-01", "lan": "corp"})
	b := newDashBrowser(t, bin)
	b.viewport(1280, 800, false)
	b.open(st, "#/t/"+tid)
	b.waitFor("deckies drawn", `document.querySelectorAll('#canvas g.decky').length === 3`, 15*time.Second)
	b.waitForForm()
	from := dashEval[[]float64](b, `(() => { const r = document.querySelector('#canvas g.decky[data-name="web-01"] .decky-box').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`)
	before := dashEval[string](b, `document.querySelector('#canvas g.decky[data-name="web-01"]').getAttribute('transform')`)

	b.do("drag web-01 down", 30*time.Second, chromedp.DragAndDropXY(from[0], from[1], from[0]+20, from[1]+110, 12))

	var moves []map[string]any
	require.Eventually(t, func() bool {
		_, ms := st.callList(t, http.MethodGet, "/api/v1/topologies/"+tid+"/mutations")
		moves = moves[:0]
		for _, m := range ms {
			if m["op"] == "update_decky" {
				moves = append(moves, m)
			}
		}
		return len(moves) == 1 && moves[0]["state"] == "applied"
	}, 20*time.Second, 50*time.Millisecond, "one applied update_decky")
	p := moves[0]["payload"].(map[string]any)
	require.Equal(t, "web-01", p["decky"])
	x, y := p["x"].(float64), p["y"].(float64)
	want := fmt.Sprintf("translate(%g,%g)", x, y)
	require.NotEqual(t, before, want, "it moved")
	require.Greater(t, y, 56.0+40, "it moved down")
	b.waitFor("drawn where dropped", fmt.Sprintf(`document.querySelector('#canvas g.decky[data-name="web-01"]').getAttribute('transform') === '%s'`, want), 10*time.Second)

	b.do("reload", 20*time.Second, chromedp.Reload())
	b.waitFor("deckies drawn again", `document.querySelectorAll('#canvas g.decky').length === 3`, 15*time.Second)
	require.Equal(t, want, dashEval[string](b, `document.querySelector('#canvas g.decky[data-name="web-01"]').getAttribute('transform')`))
	require.Empty(t, b.canvas().Problems)
	// Still exactly one.
	_, ms := st.callList(t, http.MethodGet, "/api/v1/topologies/"+tid+"/mutations")
	n := 0
	for _, m := range ms {
		if m["op"] == "update_decky" {
			n++
		}
	}
	require.Equal(t, 1, n)
	b.noProblems(false)
}

// overflowCheck reports what sticks out sideways: the page itself, feed
// rows' children, a too narrow payload summary.
const overflowCheck = `(() => {
	const de = document.documentElement;
	const out = [];
	if (de.scrollWidth > de.clientWidth) out.push('page ' + de.scrollWidth + ' > ' + de.clientWidth);
	for (const li of document.querySelectorAll('.feed-item')) {
		const box = li.getBoundingClientRect();
		for (const el of li.querySelectorAll('*')) { const r = el.getBoundingClientRect(); if (r.width && r.right > box.right + 1) { out.push('feed: ' + el.className + ' sticks out'); break; } }
	}
	// Payload summaries: never cut off, and with room to be read — the
	// table's Payload column and the feed row's body.
	for (const el of document.querySelectorAll('.sum')) {
		const st = getComputedStyle(el);
		if (st.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1) out.push('summary cut off: ' + el.textContent);
	}
	const room = (sel, min) => { for (const el of document.querySelectorAll(sel)) { const w = el.getBoundingClientRect().width; if (w && w < min) out.push(sel + ' only ' + Math.round(w) + 'px wide'); } };
	room('#mutations td.sum', Math.min(240, de.clientWidth * 0.6));
	room('#feed .feed-item .body', Math.min(320, de.clientWidth * 0.6));
	const bar = document.querySelector('.topbar');
	if (bar) {
		const kids = [...bar.querySelectorAll('.brand-link, .crumbs, .conn-btn, .menu-btn, #logout')].filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden');
		for (const e of kids) { const r = e.getBoundingClientRect(); if (r.right > de.clientWidth + 0.5 || r.left < -0.5) out.push('top bar: ' + e.className + ' off screen'); }
		for (let i = 0; i < kids.length; i++) for (let j = i + 1; j < kids.length; j++) {
			const a = kids[i].getBoundingClientRect(), b = kids[j].getBoundingClientRect();
			if (!kids[i].contains(kids[j]) && !kids[j].contains(kids[i]) && a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) out.push('top bar: ' + kids[i].className + ' overlaps ' + kids[j].className);
		}
	}
	return JSON.stringify(out);
})()`

// Finding 6: no page scrolls sideways at 390×844 or 1280×800, the top bar
// never overlaps itself, feed rows wrap and payload summaries are readable.
// With DASHBOARD_DOCS_IMG set (a directory) the overview and topology pages
// are saved there at both sizes for the README.
func TestDashboardNoHorizontalOverflow(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st, tid := startDemoStack(t)
	st.apply(t, tid, "add_lan", map[string]any{"name": "lab", "x": 40, "y": 260})
	st.apply(t, tid, "add_decky", map[string]any{"name": "mail-01", "lan": "lab", "services": []string{"smtp", "imap", "pop3"}, "archetype": "mail-server"})
	st.apply(t, tid, "attach_decky", map[string]any{"decky": "web-01", "lan": "lab"})
	st.mutate(t, tid, "remove_lan", map[string]any{"name": "corp"}) // fails: web-01 and db-01 live there
	require.Eventually(t, func() bool { return st.status(t, tid) == "degraded" }, 20*time.Second, 20*time.Millisecond)
	st.blank(t, "staging")
	b := newDashBrowser(t, bin)
	docs := os.Getenv("DASHBOARD_DOCS_IMG")

	pages := []struct{ name, hash, ready string }{
		{"overview", "#/", `#topology-rows tr[data-topology-name="demo"]`},
		{"topology", "#/t/" + tid, `#canvas g.decky[data-name="mail-01"]`},
		{"users", "#/users", `#user-rows tr`},
		{"api", "#/api", `details.op-ref`},
	}
	sizes := []struct {
		name  string
		w, h  int64
		phone bool
	}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}
	for i, size := range sizes {
		b.viewport(size.w, size.h, size.phone)
		if i == 0 {
			b.do("open", 20*time.Second, chromedp.Navigate(st.APIURL+"/"))
			b.waitFor("login form", exists("#login-username"), 10*time.Second)
			require.Equal(t, "[]", dashEval[string](b, overflowCheck), "login at %s", size.name)
			b.signIn(dashAdminUser, dashAdminPassword)
		}
		for _, pg := range pages {
			b.do(pg.name, 30*time.Second, chromedp.Evaluate[chromedp.Void](`location.hash = '`+pg.hash+`'`))
			b.waitFor(pg.name+" ready", exists(pg.ready)+` && `+exists(`#conn[data-state="live"]`), 15*time.Second)
			if pg.name == "topology" {
				b.waitFor("feed filled", `document.querySelectorAll('#feed .feed-item[data-event="mutation.failed"]').length > 0 && document.querySelectorAll('#mutations td.sum').length >= 4`, 10*time.Second)
			}
			require.Equal(t, "[]", dashEval[string](b, overflowCheck), "%s at %s", pg.name, size.name)
			if docs != "" && (pg.name == "overview" || pg.name == "topology") {
				png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(docs, fmt.Sprintf("%s-%s.png", pg.name, size.name)), png, 0o644))
			}
		}
		if size.phone {
			// The role chip, the links and Sign out are one tap away.
			b.click("#menu-btn")
			b.waitFor("menu open", `getComputedStyle(document.querySelector('#menu-panel')).display !== 'none'`, 5*time.Second)
			require.Equal(t, "admin", b.text(".menu-panel .role"))
			require.Equal(t, "[]", dashEval[string](b, overflowCheck), "menu open at %s", size.name)
			b.click("#menu-btn")
		}
	}
	// The forced password change form, on a phone.
	b.click("#menu-btn")
	b.click("#logout")
	b.signIn(dashRookieUser, dashAdminPassword)
	b.waitFor("change password form", exists("#cp-new"), 10*time.Second)
	require.Equal(t, "[]", dashEval[string](b, overflowCheck), "change password at phone")
	b.noProblems(false)
}

// Finding 7: ten tabs of one browser share one SSE connection (one slot in
// the Redis slot set, with a cap of 2), none asks for a new login, all see
// the same events, and when the leading tab closes another one takes over.
func TestDashboardTenTabsOneSlot(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, func(s *sse.Server) { s.MaxPerUser = 2 })
	tid := st.live(t, "e2e-tabs")
	first := newDashBrowser(t, bin)
	first.open(st, "#/t/"+tid)
	first.waitFor("first tab live", exists(`#conn[data-state="live"]`), 15*time.Second)

	tabs := []*dashBrowser{first}
	for i := 2; i <= 10; i++ {
		tab := first.newTab(fmt.Sprintf("tab%d", i))
		tab.do("open", 20*time.Second, chromedp.Navigate(st.APIURL+"/#/t/"+tid))
		tabs = append(tabs, tab)
	}
	for _, tab := range tabs {
		tab.waitFor("signed in without a login", exists("#topo-name")+` && `+exists(`#conn[data-state="live"]`), 20*time.Second)
		require.Equal(t, int64(0), dashEval[int64](tab, `document.querySelectorAll('#login-username').length`))
	}
	require.Eventually(t, func() bool { return st.heldSlots(t) == 1 }, 10*time.Second, 20*time.Millisecond, "one slot for ten tabs")
	first.click("#conn .conn-btn")
	first.waitFor("the stream is shared", `(document.querySelector('#conn-pop') || {}).textContent.includes('shared by 10 open tabs')`, 15*time.Second)

	seen := func(tabs []*dashBrowser, mid string) {
		t.Helper()
		for _, tab := range tabs {
			tab.waitFor("the event", exists(fmt.Sprintf(`#feed li[data-mutation="%s"][data-event="mutation.applied"]`, mid)), 15*time.Second)
		}
	}
	seen(tabs, st.apply(t, tid, "add_lan", map[string]any{"name": "corp"}))
	require.Equal(t, int64(1), st.heldSlots(t))

	// The leading tab goes away: another tab takes the stream over, resumes
	// after the last event, and the slot count stays one.
	first.close()
	rest := tabs[1:]
	for _, tab := range rest {
		tab.waitFor("still live", exists(`#conn[data-state="live"]`), 20*time.Second)
	}
	seen(rest, st.apply(t, tid, "add_lan", map[string]any{"name": "lab"}))
	require.Eventually(t, func() bool { return st.heldSlots(t) == 1 }, 10*time.Second, 20*time.Millisecond, "one slot after the hand-over")
	for _, tab := range rest {
		tab.noProblems(true)
	}
}

// Finding 8: a topology deleted from another client shows a banner, loses
// its actions and says it is gone.
func TestDashboardDeletedElsewhere(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.blank(t, "e2e-doomed")
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitFor("page", exists(`#topo-status[data-status="pending"]`)+` && `+exists(".act-delete"), 15*time.Second)

	code, _ := st.call(t, http.MethodDelete, "/api/v1/topologies/"+tid, nil)
	require.Equal(t, http.StatusNoContent, code)
	b.waitFor("deleted banner", exists("#banner-deleted"), 20*time.Second)
	require.Contains(t, b.text("#banner-deleted"), "e2e-doomed was deleted")
	require.Equal(t, "deleted", b.text("#topo-status"))
	b.waitFor("no actions left", gone(".act-delete")+` && `+gone(".act-deploy")+` && `+gone(".act-deploy-side"), 5*time.Second)
	b.noProblems(true) // the page's own look-up of the topology got a 404
}

// Finding 8: a status change made elsewhere (here a teardown through the
// API) is announced in a banner, and the closed queue says why.
func TestDashboardStatusChangedElsewhere(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-elsewhere")
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitForForm()
	code, _ := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/teardown", nil)
	require.Equal(t, http.StatusAccepted, code)
	b.waitFor("torn down", exists(`#topo-status[data-status="torn_down"]`), 20*time.Second)
	b.waitFor("status banner", exists("#banner-status"), 10*time.Second)
	require.Contains(t, b.text("#banner-status"), "to torn down")
	b.waitFor("queue closed", exists("#mutate-closed"), 10*time.Second)
	b.noProblems(false)
}

// Finding 3: Re-check shows the API's 409 issues and unhealthy units in
// plain words. The 409 is answered by the page's fetch (DOMAIN §3 heal
// contract), so this runs whatever the backend's build.
func TestDashboardHealIssuesInPlainWords(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-heal-issues")
	st.mutate(t, tid, "add_lan", map[string]any{"name": "dmz"}) // fails: degrades
	require.Eventually(t, func() bool { return st.status(t, tid) == "degraded" }, 20*time.Second, 20*time.Millisecond)
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.waitFor("Re-check offered", exists("#banner-degraded .act-heal-banner"), 15*time.Second)
	b.waitFor("the reason in the banner", `document.querySelector('#banner-degraded').textContent.includes('A LAN named “dmz” already exists')`, 10*time.Second)
	require.True(t, dashEval[bool](b, `(() => {
		const orig = window.fetch;
		window.fetch = function (url, opts) {
			if (opts && opts.method === 'POST' && /\/heal$/.test(String(url))) {
				return Promise.resolve(new Response(JSON.stringify({
					detail: 'Topology is not healthy',
					issues: [
						{ severity: 'error', code: 'SUBNET_OVERLAP', message: "LANs 'corp' and 'lab' overlap", target: { lans: 'corp, lab' } },
						{ severity: 'error', code: 'IP_COLLISION', message: 'x', target: { lan: 'corp', ip: '10.0.1.3', deckies: 'web-01, web-02' } },
					],
					unhealthy: [{ decky: 'db-01', reason: 'container exited' }],
				}), { status: 409, headers: { 'Content-Type': 'application/json' } }));
			}
			return orig.apply(this, arguments);
		};
		return true;
	})()`))
	b.click("#banner-degraded .act-heal-banner")
	b.waitFor("issues dialog", exists("#issues-list"), 10*time.Second)
	items := dashEval[[]string](b, `[...document.querySelectorAll('#issues-list li span:first-child')].map((e) => e.textContent)`)
	require.Equal(t, []string{
		"The subnets of LANs “corp” and “lab” overlap.",
		"Deckies “web-01” and “web-02” share the address 10.0.1.3 on LAN “corp”.",
		"Decky “db-01” is not healthy: container exited.",
	}, items)
	require.Contains(t, b.text("dialog h3"), "is still degraded")
	b.click("dialog .dialog-actions .btn")
	b.waitFor("dialog closed", gone("dialog"), 5*time.Second)
	require.Equal(t, "degraded", b.text("#topo-status"))
	b.noProblems(false)
}

// Finding 3 against the real endpoint: Re-check on a degraded topology that
// is valid and healthy takes it back to active (DOMAIN §3, D12). Skipped
// while POST /topologies/{id}/heal is not in this build (another engineer
// builds it).
func TestDashboardHeal(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	tid := st.live(t, "e2e-heal")
	// Probe on an active topology: the endpoint answers 409 (not degraded)
	// when it exists.
	if code, _ := st.call(t, http.MethodPost, "/api/v1/topologies/"+tid+"/heal", nil); code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		t.Skipf("POST /topologies/{id}/heal is not in this build (HTTP %d); enable when it lands", code)
	}
	st.mutate(t, tid, "add_lan", map[string]any{"name": "dmz"}) // fails, changes nothing: still valid
	require.Eventually(t, func() bool { return st.status(t, tid) == "degraded" }, 20*time.Second, 20*time.Millisecond)
	b := newDashBrowser(t, bin)
	b.open(st, "#/t/"+tid)
	b.click("#banner-degraded .act-heal-banner")
	b.waitFor("active again", exists(`#topo-status[data-status="active"]`), 20*time.Second)
	b.waitFor("healed in the feed", `[...document.querySelectorAll('#feed .feed-item[data-event="status"] .reason')].some((e) => e.textContent.includes('valid and healthy again'))`, 10*time.Second)
	require.Equal(t, int64(0), dashEval[int64](b, `document.querySelectorAll('#banner-degraded, #banner-status').length`))
	b.noProblems(false)
}

// Finding 8: admins manage users from the dashboard — create, change role,
// reset password, delete — through /api/v1/config/users.
func TestDashboardUsersAdmin(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	b := newDashBrowser(t, bin)
	b.open(st, "#/users")
	b.waitFor("user list", exists(`#user-rows tr[data-username="operator"]`), 15*time.Second)
	// Oneself: no delete, no re-role.
	require.True(t, dashEval[bool](b, `document.querySelector('#user-rows tr[data-username="operator"] .act-delete-user').disabled && document.querySelector('#user-rows tr[data-username="operator"] .role-select').disabled`))

	b.do("a short password", 30*time.Second,
		chromedp.SendKeys(css("#user-new-name"), "analyst"),
		chromedp.SendKeys(css("#user-new-password"), "short"),
		chromedp.Click(css("#user-create")))
	b.waitFor("password refused", `!document.querySelector('#user-new-password-error').hidden`, 5*time.Second)
	b.do("create", 30*time.Second, chromedp.SetValue(css("#user-new-password"), "a long enough password"), chromedp.Click(css("#user-create")))
	row := `#user-rows tr[data-username="analyst"]`
	b.waitFor("created", exists(row), 10*time.Second)
	require.Equal(t, "must change", b.text(row+" .chip-warn"))
	b.do("duplicate", 30*time.Second,
		chromedp.SendKeys(css("#user-new-name"), "analyst"),
		chromedp.SendKeys(css("#user-new-password"), "another long password"),
		chromedp.Click(css("#user-create")))
	b.waitFor("duplicate refused", `document.querySelector('#user-new-name-error').textContent.includes('already exists')`, 5*time.Second)

	b.do("make admin", 30*time.Second, chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelector('`+jsq(row)+` .role-select'); s.value = 'admin'; s.dispatchEvent(new Event('change'));
	})()`))
	b.click("dialog .btn-primary")
	b.waitFor("admin now", fmt.Sprintf(`document.querySelector('%s .role-select').value === 'admin'`, jsq(row)), 10*time.Second)

	b.clickUntil("reset dialog", row+" .act-reset", exists("#reset-password"), 10*time.Second)
	b.do("new password", 30*time.Second, chromedp.WaitVisible(css("#reset-password")), chromedp.SendKeys(css("#reset-password"), "a temporary password"), chromedp.Click(css("#reset-submit")))
	b.waitFor("reset done", `[...document.querySelectorAll('.toast-msg')].some((e) => e.textContent.includes('Password of analyst reset'))`, 10*time.Second)

	b.clickUntil("confirm dialog", row+" .act-delete-user", exists("dialog .btn-danger"), 10*time.Second)
	b.click("dialog .btn-danger")
	b.waitFor("deleted", gone(row), 10*time.Second)

	code, users := st.callList(t, http.MethodGet, "/api/v1/config/users")
	require.Equal(t, http.StatusOK, code)
	for _, u := range users {
		require.NotEqual(t, "analyst", u["username"])
	}
	b.noProblems(true) // the duplicate answered 409
}

// Finding 8: the API reference is a page of the dashboard, rendered from
// /api/v1/openapi.json.
func TestDashboardAPIReference(t *testing.T) {
	bin := dashChromium(t)
	t.Parallel()
	st := startDashStack(t, nil)
	b := newDashBrowser(t, bin)
	b.open(st, "#/api")
	op := `details#op-post--api-v1-topologies-id-mutations`
	b.waitFor("operations", exists(op), 15*time.Second)
	require.Contains(t, b.text(op+" summary"), "/api/v1/topologies/{id}/mutations")
	b.click(op + " summary")
	require.Contains(t, b.text(op+" .op-body"), "expected_version")
	require.Contains(t, b.text(op+" .op-body"), "422")
	b.click(op + ` .schema-ref`)
	b.waitFor("schema opened", `document.querySelector('#schema-Op').open`, 5*time.Second)
	b.do("filter", 5*time.Second, chromedp.SendKeys(css("#apiref-filter"), "sse-ticket"))
	b.waitFor("filtered", `[...document.querySelectorAll('details.op-ref')].filter((d) => !d.hidden).length === 1`, 5*time.Second)
	// Monitoring is linked for admins.
	require.Equal(t, "/monitoring", dashEval[string](b, `document.querySelector('.nav a[href="/monitoring"]').getAttribute('href')`))
	b.noProblems(false)
}
