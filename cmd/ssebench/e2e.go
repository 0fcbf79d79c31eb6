//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
)

// e2eState maps the mutations of an end-to-end run to their numbers and
// POST start times, for the subscribers' frame handler.
type e2eState struct {
	total int
	start []atomic.Int64 // POST start (unix ns) by mutation number

	mu  sync.RWMutex
	ids map[string]int // mutation id → number
}

func (st *e2eState) lookup(mid []byte) (int, bool) {
	st.mu.RLock()
	n, ok := st.ids[string(mid)]
	st.mu.RUnlock()
	return n, ok
}

func (st *e2eState) learn(mid string, n int) {
	st.mu.Lock()
	st.ids[mid] = n
	st.mu.Unlock()
}

// e2eHandler records the frames of mutations: enqueued, applying, and the
// terminal applied or failed. The mutation is found by its id, learnt from
// the POST's answer or, for coords ops (whose payload x is the mutation's
// number), from its enqueued frame, which reaches a subscriber before the
// rest of that mutation's frames.
type e2eHandler struct{ st *e2eState }

func (h e2eHandler) frame(c *client, f []byte, now int64) {
	if bytes.Contains(f, snapshotMarker) {
		c.markReady()
		return
	}
	name, ok := field(f, eventField)
	if !ok {
		return
	}
	var kind int
	switch {
	case bytes.Equal(name, eventEnqueued):
		kind = kindEnqueued
	case bytes.Equal(name, eventApplying):
		kind = kindApplying
	case bytes.Equal(name, eventApplied):
		kind = kindTerminal
	case bytes.Equal(name, eventFailed):
		kind = kindTerminal
		c.failed++
	default:
		return
	}
	mid, ok := jsonString(f, mutationIDKey)
	if !ok {
		return
	}
	n, ok := h.st.lookup(mid)
	if !ok && kind != kindTerminal {
		if x, ok2 := jsonInt(f, coordsMarkerKey); ok2 && x >= 0 && int(x) < h.st.total {
			n, ok = int(x), true
			h.st.learn(string(mid), n)
		}
	}
	if !ok {
		c.unresolved = append(c.unresolved, unresolved{kind: kind, id: string(mid), at: now})
		return
	}
	c.record(kind, n, h.st.start[n].Load(), now)
}

// e2eOp is the body of mutation n: the -e2e-mix cycled. coords moves the DMZ
// to x = n (the worker applies it in one transaction); services toggles the
// gateway's http service (claim, op transaction, materializer call, finish).
func e2eOp(mix []string, n int) []byte {
	var body any
	switch mix[n%len(mix)] {
	case "services":
		svcs := []string{"ssh"}
		if (n/len(mix))%2 == 0 {
			svcs = append(svcs, "http")
		}
		body = map[string]any{"op": domain.OpUpdateDecky, "payload": map[string]any{"decky": "gw", "services": svcs}}
	default:
		body = map[string]any{"op": domain.OpUpdateLAN, "payload": map[string]any{"name": "dmz", "x": n}}
	}
	raw, _ := json.Marshal(body)
	return raw
}

// e2eResult is one end-to-end run.
type e2eResult struct {
	n, topics           int
	posts, accepted     int
	postErrs            int64
	firstErr            string
	post                benchkit.Quantiles // POST → 202
	lat                 [kinds]benchkit.Quantiles
	p99All              [kinds]time.Duration // over every expected delivery, a missing one counting as never
	expected            int64                // deliveries expected per kind
	delivered           [kinds]int64
	incomplete          [kinds]int // mutation frames some subscriber never got
	dup, failed         int64
	reconnects          int64
	cpu                 map[string]float64 // cores per process over the load
	postsDone, drainEnd time.Duration      // after the load started
	peer                *fanResult         // Centrifugo fan-out at the same N in the same run
	loadAvg             string
}

// missing is every delivery that did not happen, all kinds together.
func (r *e2eResult) missing() int64 {
	var m int64
	for k := 0; k < kinds; k++ {
		m += r.expected - r.delivered[k]
	}
	return m
}

// e2e runs one end-to-end scenario: api, workers and sse as processes.
func (b *bench) e2e(ctx context.Context, run int, s scenario) (*e2eResult, error) {
	o := b.o
	res := &e2eResult{n: s.n, topics: s.topics, loadAvg: benchkit.LoadAvg(), cpu: map[string]float64{}}
	fmt.Printf("\n== run %d: %s — api + %d worker(s) + sse, %d subscribers on %d topolog(ies), POST %.0f/s for %s, mix %s (load average %s) ==\n",
		run+1, s, o.workers, s.n, s.topics, o.e2eRate, o.duration, o.mix, res.loadAvg)
	tids, err := b.seedTopologies(ctx, s.topics)
	if err != nil {
		return nil, err
	}
	tokens, err := b.viewerTokens(ctx, s.n)
	if err != nil {
		return nil, err
	}
	admin, err := b.userToken(ctx, domain.RoleAdmin)
	if err != nil {
		return nil, err
	}

	pprof := o.pprofDir != ""
	var procs []*benchkit.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()
	for i := 0; i < o.workers; i++ {
		p, err := benchkit.Start(benchkit.Spec{
			Name: fmt.Sprintf("worker%d", i+1), Bin: o.workerBin, LogDir: b.workDir, Janitor: b.janitor, Ready: `"worker started"`, Pprof: pprof,
			Env: append(b.commonEnv(), "DECNET_MATERIALIZER=noop"),
		})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	api, err := benchkit.Start(benchkit.Spec{
		Name: "api", Bin: o.apiBin, LogDir: b.workDir, Janitor: b.janitor, Ready: `"api listening"`, Pprof: pprof,
		Env: append(b.commonEnv(), "PORT="+strconv.Itoa(port)),
	})
	if err != nil {
		return nil, err
	}
	procs = append(procs, api)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := benchkit.WaitHTTP(base+"/readyz", 15*time.Second); err != nil {
		return nil, err
	}
	sse, err := b.startSSE("sse-e2e")
	if err != nil {
		return nil, err
	}
	procs = append(procs, sse.Proc)

	total := int(o.e2eRate * o.duration.Seconds())
	st := &e2eState{total: total, start: make([]atomic.Int64, total), ids: make(map[string]int, total)}
	subs, err := connectAll(s.n, func(i int) *client {
		t := i % s.topics
		return &client{addr: sse.addr, request: topologyRequest(tids[t], tokens[i/o.perUser]), h: e2eHandler{st: st}, slot: t}
	})
	if err != nil {
		return nil, err
	}
	defer subs.close()
	fmt.Printf("connected %d subscribers\n", s.n)
	time.Sleep(time.Second)

	// Profiles and counters of every process over the load.
	tag := fmt.Sprintf("%dx%d-run%d", s.n, s.topics, run+1)
	var profiles sync.WaitGroup
	if pprof {
		for _, p := range procs {
			profiles.Add(1)
			go func() {
				defer profiles.Done()
				if err := p.CPUProfile(o.duration-time.Second, filepath.Join(o.pprofDir, "cpu-e2e-"+p.Name+"-"+tag+".pprof")); err != nil {
					fmt.Println("profile:", err)
				}
			}()
		}
	}
	stopSelf := b.startCPUProfile("ssebench-cpu-e2e-" + tag + ".pprof")
	before := make([]benchkit.Counters, len(procs))
	for i, p := range procs {
		before[i] = benchkit.Sample(p.Pid)
	}

	// Open loop of POSTs.
	mix := strings.Split(o.mix, ",")
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	accepted := make([]bool, total)
	postLat := make([]time.Duration, total)
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / o.e2eRate)
	loadStart := time.Now()
	for n := 0; n < total; n++ {
		if d := time.Until(loadStart.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mid, d, err := postMutation(ctx, hc, base, tids[n%s.topics], admin, e2eOp(mix, n), &st.start[n])
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			st.learn(mid, n)
			accepted[n], postLat[n] = true, d
		}()
	}
	wg.Wait()
	res.postsDone = time.Since(loadStart)
	res.posts, res.postErrs = total, errs.Load()
	if e := firstErr.Load(); e != nil {
		res.firstErr = e.(string)
	}
	perTopology := make([]int64, s.topics)
	var lats []time.Duration
	for n, ok := range accepted {
		if ok {
			res.accepted++
			perTopology[n%s.topics]++
			lats = append(lats, postLat[n])
		}
	}
	res.post = benchkit.QuantilesOf(lats)
	for _, c := range subs.clients {
		res.expected += perTopology[c.slot]
	}
	subs.waitFor(int64(kinds)*res.expected, o.drain)
	res.drainEnd = time.Since(loadStart)
	for i, p := range procs {
		d := benchkit.Sample(p.Pid).Sub(before[i])
		res.cpu[p.Name] = d.CPU.Seconds() / res.drainEnd.Seconds()
	}
	stopSelf()
	profiles.Wait()
	subs.close()

	// Tally.
	var lat [kinds][]int32
	for _, c := range subs.clients {
		c.mu.Lock()
		for _, u := range c.unresolved {
			if n, ok := st.lookup([]byte(u.id)); ok {
				c.record(u.kind, n, st.start[n].Load(), u.at)
			}
		}
		for k := 0; k < kinds; k++ {
			lat[k] = append(lat[k], c.lat[k]...)
		}
		res.dup += c.dup
		res.failed += c.failed
		res.reconnects += c.reconnects
		c.mu.Unlock()
	}
	subsPerTopology := make([]int, s.topics)
	for _, c := range subs.clients {
		subsPerTopology[c.slot]++
	}
	for k := 0; k < kinds; k++ {
		res.lat[k] = benchkit.QuantilesMicros(lat[k])
		res.p99All[k] = benchkit.QuantileAll(lat[k], res.expected, .99)
		for n, ok := range accepted {
			if !ok {
				continue
			}
			got := 0
			for _, c := range subs.clients {
				if c.slot == n%s.topics && c.seen[k].has(n) {
					got++
				}
			}
			res.delivered[k] += int64(got)
			if got < subsPerTopology[n%s.topics] {
				res.incomplete[k]++
			}
		}
	}
	fmt.Printf("POSTs %d, accepted %d, errors %d (all answered %s after the load started); POST → 202 %s\n",
		res.posts, res.accepted, res.postErrs, res.postsDone.Round(time.Millisecond), res.post)
	if res.firstErr != "" {
		fmt.Println("first POST error:", res.firstErr)
	}
	for k, name := range []string{"enqueued", "applying", "applied/failed"} {
		fmt.Printf("POST → %-14s %s; p99 counting missing deliveries as never %s; delivered %d of %d, %d mutations not delivered to every subscriber\n",
			name, res.lat[k], benchkit.Ms(res.p99All[k]), res.delivered[k], res.expected, res.incomplete[k])
	}
	fmt.Printf("failed mutations seen %d, duplicates %d, reconnects %d; CPU (cores) over the load and drain:", res.failed, res.dup, res.reconnects)
	for _, p := range procs {
		fmt.Printf(" %s %.2f", p.Name, res.cpu[p.Name])
	}
	fmt.Println()
	return res, nil
}

// postMutation POSTs one mutation, storing its start time in start just
// before the request is sent, and returns its id and the POST's duration.
func postMutation(ctx context.Context, hc *http.Client, base, tid, token string, body []byte, start *atomic.Int64) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/topologies/"+tid+"/mutations", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	start.Store(t0.UnixNano())
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Since(t0), err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if resp.StatusCode != http.StatusAccepted {
		return "", d, fmt.Errorf("POST: %d %s", resp.StatusCode, raw)
	}
	var out struct {
		MutationID string `json:"mutation_id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.MutationID == "" {
		return "", d, fmt.Errorf("POST: no mutation_id in %s", raw)
	}
	return out.MutationID, d, nil
}
