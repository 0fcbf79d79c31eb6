package chaos

// The harness's HTTP client of the api, and the census of every status it
// was answered (5xx bodies and Retry-After checked).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// census counts every answer by route class, status (0 = transport error or
// timeout) and whether a fault was in progress, and keeps samples of the
// answers the contract forbids (SYSTEM §3.7: 503 JSON with Retry-After while
// a dependency is down, never 500).
type census struct {
	fault atomic.Bool

	mu      sync.Mutex
	counts  map[censusKey]int
	bad     []string
	badN    int
	errText map[string]int
}

type censusKey struct {
	class  string
	status int
	fault  bool
}

func newCensus() *census {
	return &census{counts: map[censusKey]int{}, errText: map[string]int{}}
}

// record notes one answer.
func (c *census) record(class string, status int, hdr http.Header, body []byte, err error) {
	fault := c.fault.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[censusKey{class, status, fault}]++
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		c.errText[msg]++
		return
	}
	if status < 500 {
		return
	}
	problem := ""
	switch {
	case status != http.StatusServiceUnavailable:
		problem = fmt.Sprintf("%d (only 503 is allowed)", status)
	case hdr.Get("Retry-After") == "":
		problem = "503 without Retry-After"
	default:
		if n, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || n < 0 {
			problem = fmt.Sprintf("503 with malformed Retry-After %q", hdr.Get("Retry-After"))
		} else {
			var v struct {
				Detail *string `json:"detail"`
			}
			if json.Unmarshal(body, &v) != nil || v.Detail == nil {
				problem = "503 without a JSON {\"detail\"} body"
			}
		}
	}
	if problem == "" {
		return
	}
	c.badN++
	if len(c.bad) < 12 {
		when := "outside a fault"
		if fault {
			when = "during a fault"
		}
		c.bad = append(c.bad, fmt.Sprintf("%s %s at %s: %s; body %q", class, when,
			time.Now().Format("15:04:05.000"), problem, excerpt(body, 160)))
	}
}

// badAnswers returns how many forbidden answers were seen, with samples.
func (c *census) badAnswers() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.badN, append([]string(nil), c.bad...)
}

// count returns how many answers had status (any class).
func (c *census) count(status int, duringFault *bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.counts {
		if k.status == status && (duringFault == nil || *duringFault == k.fault) {
			n += v
		}
	}
	return n
}

// fiveXX formats the 5xx and transport-error counts by status ("500×12,
// 503×4 (all during faults)"), for the report.
func (c *census) fiveXX() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	type agg struct{ all, fault int }
	by := map[int]*agg{}
	for k, v := range c.counts {
		if k.status < 500 && k.status != 0 {
			continue
		}
		a := by[k.status]
		if a == nil {
			a = &agg{}
			by[k.status] = a
		}
		a.all += v
		if k.fault {
			a.fault += v
		}
	}
	if len(by) == 0 {
		return "none"
	}
	var sts []int
	for s := range by {
		sts = append(sts, s)
	}
	sort.Ints(sts)
	var parts []string
	for _, s := range sts {
		name := strconv.Itoa(s)
		if s == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s×%d (%d during faults)", name, by[s].all, by[s].fault))
	}
	return strings.Join(parts, ", ")
}

// detail formats every class and status, for the test log.
func (c *census) detail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for k, v := range c.counts {
		f := ""
		if k.fault {
			f = " [fault]"
		}
		lines = append(lines, fmt.Sprintf("  %-22s %3d%s: %d", k.class, k.status, f, v))
	}
	sort.Strings(lines)
	var errs []string
	for e, n := range c.errText {
		errs = append(errs, fmt.Sprintf("  transport error %q: %d", e, n))
	}
	sort.Strings(errs)
	return strings.Join(append(lines, errs...), "\n")
}

func excerpt(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// apiClient calls the api as the admin.
type apiClient struct {
	base   string
	hc     *http.Client
	token  string
	census *census
}

func newAPIClient(base string, c *census) *apiClient {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}
	return &apiClient{base: base, census: c, hc: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

// call sends one request; out (if not nil) receives a 2xx JSON body. class
// names the route in the census.
func (a *apiClient) call(ctx context.Context, method, path, class string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			a.census.record(class, 0, nil, nil, err)
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		a.census.record(class, 0, nil, nil, err)
		return 0, nil, err
	}
	a.census.record(class, resp.StatusCode, resp.Header, b, nil)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, b, nil
}

// login logs the seeded admin in; it returns the status (0: no answer).
func (a *apiClient) login(ctx context.Context) (int, error) {
	var v struct {
		AccessToken string `json:"access_token"`
	}
	st, b, err := a.call(ctx, "POST", "/api/v1/auth/login", "POST login",
		map[string]string{"username": "admin", "password": adminPassword}, &v)
	if err != nil || st != 200 || v.AccessToken == "" {
		return st, fmt.Errorf("login: status %d %v %s", st, err, excerpt(b, 200))
	}
	a.token = v.AccessToken
	return st, nil
}

// createActive creates a blank topology, deploys it and waits until it is
// active.
func (a *apiClient) createActive(ctx context.Context, name string) (string, error) {
	id, err := a.createBlank(ctx, name)
	if err != nil {
		return "", err
	}
	if err := a.deploy(ctx, id); err != nil {
		return "", err
	}
	var last string
	if _, ok := waitFor(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		last, _ = a.status(ctx, id)
		return last == "active"
	}); !ok {
		return "", fmt.Errorf("topology %s is %q, not active, 60 s after deploy", name, last)
	}
	return id, nil
}

// createBlank creates a pending blank topology.
func (a *apiClient) createBlank(ctx context.Context, name string) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	st, b, err := a.call(ctx, "POST", "/api/v1/topologies/blank", "POST blank", map[string]string{"name": name}, &v)
	if err != nil || st != 201 {
		return "", fmt.Errorf("create %s: status %d %v %s", name, st, err, excerpt(b, 200))
	}
	return v.ID, nil
}

// deploy posts the deploy of a pending topology.
func (a *apiClient) deploy(ctx context.Context, id string) error {
	st, b, err := a.call(ctx, "POST", "/api/v1/topologies/"+id+"/deploy", "POST deploy", struct{}{}, nil)
	if err != nil || st != 202 {
		return fmt.Errorf("deploy %s: status %d %v %s", id, st, err, excerpt(b, 200))
	}
	return nil
}

// teardown posts the teardown of a topology.
func (a *apiClient) teardown(ctx context.Context, id string) error {
	st, b, err := a.call(ctx, "POST", "/api/v1/topologies/"+id+"/teardown", "POST teardown", struct{}{}, nil)
	if err != nil || st != 202 {
		return fmt.Errorf("teardown %s: status %d %v %s", id, st, err, excerpt(b, 200))
	}
	return nil
}

// status reads a topology's status through the hydrated view.
func (a *apiClient) status(ctx context.Context, id string) (string, error) {
	var v struct {
		Topology struct {
			Status string `json:"status"`
		} `json:"topology"`
	}
	st, b, err := a.call(ctx, "GET", "/api/v1/topologies/"+id, "GET topology", nil, &v)
	if err != nil || st != 200 {
		return "", fmt.Errorf("get %s: status %d %v %s", id, st, err, excerpt(b, 200))
	}
	return v.Topology.Status, nil
}

// enqueue posts one mutation; mid is set on 202.
func (a *apiClient) enqueue(ctx context.Context, id, op string, payload map[string]any) (mid string, status int, err error) {
	var v struct {
		MutationID string `json:"mutation_id"`
	}
	st, _, err := a.call(ctx, "POST", "/api/v1/topologies/"+id+"/mutations", "POST mutations",
		map[string]any{"op": op, "payload": payload, "expected_version": nil}, &v)
	if err == nil && st == 202 && v.MutationID == "" {
		err = fmt.Errorf("202 without mutation_id")
	}
	return v.MutationID, st, err
}

// ticket mints an SSE ticket.
func (a *apiClient) ticket(ctx context.Context) (string, int, error) {
	var v struct {
		Ticket string `json:"ticket"`
	}
	st, _, err := a.call(ctx, "POST", "/api/v1/auth/sse-ticket", "POST sse-ticket", struct{}{}, &v)
	return v.Ticket, st, err
}
