package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
)

func splitMix(mix string) []string { return strings.Split(mix, ",") }

// op returns the n-th mutation of the mix, cycling through kinds:
// "coords" moves the DMZ (no materialisation: one transaction), "services"
// toggles a gateway service (a ServicesDiff call: claim, op, finish),
// "add_decky" adds a decky to the DMZ with an auto-allocated IP (Spawn, then
// the decky's state) and "add_lan" adds a LAN with an auto-allocated subnet
// (CreateNetwork, and the global subnet-allocation lock of DOMAIN §7.1,
// which serialises every auto-allocating add_lan of every topology).
func op(kinds []string, n int) (domain.Op, map[string]any) {
	switch kinds[n%len(kinds)] {
	case "coords":
		return domain.OpUpdateLAN, map[string]any{"name": "dmz", "x": n}
	case "services":
		svcs := []string{"ssh"}
		if (n/len(kinds))%2 == 0 {
			svcs = append(svcs, "http")
		}
		return domain.OpUpdateDecky, map[string]any{"decky": "gw", "services": svcs}
	case "add_decky":
		return domain.OpAddDecky, map[string]any{"name": fmt.Sprintf("d-%d", n), "lan": "dmz", "services": []string{"ssh"}}
	}
	return domain.OpAddLAN, map[string]any{"name": fmt.Sprintf("lan-%d", n)}
}

// post sends one enqueue and returns the mutation id and when the POST
// started.
func (s *system) post(ctx context.Context, tid string, n int) (string, time.Time, error) {
	o, payload := op(s.kinds, n)
	raw, _ := json.Marshal(map[string]any{"op": o, "payload": payload})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/api/v1/topologies/"+tid+"/mutations", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.idempotencyKeys {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return "", start, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", start, fmt.Errorf("POST: %d %s", resp.StatusCode, body)
	}
	var out struct {
		MutationID string `json:"mutation_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", start, err
	}
	return out.MutationID, start, nil
}

// mutationID reads payload.mutation_id of an event envelope.
func mutationID(data string) (string, bool) {
	var env struct {
		Payload struct {
			MutationID string `json:"mutation_id"`
		} `json:"payload"`
	}
	if json.Unmarshal([]byte(data), &env) != nil || env.Payload.MutationID == "" {
		return "", false
	}
	return env.Payload.MutationID, true
}

// latencyResult is one run of the latency phase.
type latencyResult struct {
	q               benchkit.Quantiles
	errors, missing int
	load            string
}

func (s *system) latencyPhase(ctx context.Context) (*latencyResult, error) {
	c := s.cfg
	res := &latencyResult{load: benchkit.LoadAvg()}
	total := int(c.duration.Seconds() * float64(c.rate))
	interval := time.Second / time.Duration(c.rate)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	ids := make([]string, total)
	starts := make([]time.Time, total)
	begin := time.Now()
	for n := 0; n < total; n++ {
		if d := time.Until(begin.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, start, err := s.post(ctx, s.tids[n%len(s.tids)], n)
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			ids[n], starts[n] = id, start
		}()
	}
	wg.Wait()
	var ok []string
	for _, id := range ids {
		if id != "" {
			ok = append(ok, id)
		}
	}
	res.missing = s.waitApplied(ok, 30*time.Second)
	res.errors = int(errs.Load())
	var lat []time.Duration
	s.mu.Lock()
	for i, id := range ids {
		if at, done := s.applied[id]; done && id != "" {
			lat = append(lat, at.Sub(starts[i]))
		}
	}
	s.mu.Unlock()
	res.q = benchkit.QuantilesOf(lat)
	fmt.Printf("latency — POST → mutation.applied in the stream, open loop at %d/s over %d topologies for %s (load average %s)\n",
		c.rate, c.topologies, c.duration, res.load)
	fmt.Printf("  mutations: %d sent, %d POST errors, %d not applied within 30 s\n", total, res.errors, res.missing)
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first POST error: %s\n", e)
	}
	fmt.Printf("  %s\n", res.q)
	return res, nil
}

// burstResult is one run of the burst phase.
type burstResult struct {
	accepted, errors int
	loadTime         time.Duration // from the first POST to the last answer
	appliedDuring    int           // applied before the load stopped
	backlog          time.Duration // from the end of the load to the last applied
	notApplied       int
	post             benchkit.Quantiles
	cpu              map[string]float64 // cores per process over the load and drain
	load             string
}

func (b *burstResult) acceptedPerSec() float64 { return float64(b.accepted) / b.loadTime.Seconds() }

func (b *burstResult) appliedDuringPerSec() float64 {
	return float64(b.appliedDuring) / b.loadTime.Seconds()
}

// appliedAfterPerSec is the drain rate once the load stopped (0 when nothing
// was left).
func (b *burstResult) appliedAfterPerSec() float64 {
	if b.backlog <= 0 {
		return 0
	}
	return float64(b.accepted-b.notApplied-b.appliedDuring) / b.backlog.Seconds()
}

func (s *system) burstPhase(ctx context.Context, run int) (*burstResult, error) {
	c := s.cfg
	res := &burstResult{load: benchkit.LoadAvg(), cpu: map[string]float64{}}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		ids      []string
		errs     atomic.Int64
		counter  atomic.Int64
		firstErr atomic.Value
	)
	stopProfiles := s.profileBurst(run)
	before := make([]benchkit.Counters, len(s.procs))
	for i, p := range s.procs {
		before[i] = benchkit.Sample(p.Pid)
	}
	start := time.Now()
	stop := start.Add(c.duration)
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myIDs []string
			for time.Now().Before(stop) {
				n := int(counter.Add(1))
				id, t0, err := s.post(ctx, s.tids[n%len(s.tids)], n)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
				myIDs = append(myIDs, id)
			}
			mu.Lock()
			lat = append(lat, mine...)
			ids = append(ids, myIDs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	loadEnd := time.Now()
	res.loadTime = loadEnd.Sub(start)
	res.accepted, res.errors = len(ids), int(errs.Load())
	res.post = benchkit.QuantilesOf(lat)
	if c.workers > 0 {
		res.notApplied = s.waitApplied(ids, c.drainLimit)
		var last time.Time
		s.mu.Lock()
		for _, id := range ids {
			at, ok := s.applied[id]
			if !ok {
				continue
			}
			if !at.After(loadEnd) {
				res.appliedDuring++
			}
			if at.After(last) {
				last = at
			}
		}
		s.mu.Unlock()
		res.backlog = max(0, last.Sub(loadEnd))
	}
	elapsed := time.Since(start)
	for i, p := range s.procs {
		res.cpu[p.Name] = benchkit.Sample(p.Pid).Sub(before[i]).CPU.Seconds() / elapsed.Seconds()
	}
	stopProfiles()
	fmt.Printf("burst — %d clients POST back to back for %s, %d worker(s) draining (load average %s)\n", c.clients, c.duration, c.workers, res.load)
	fmt.Printf("  accepted: %d in %s = %.0f POST/s, %d errors; POST latency %s\n",
		res.accepted, res.loadTime.Round(time.Millisecond), res.acceptedPerSec(), res.errors, res.post)
	if e := firstErr.Load(); e != nil {
		fmt.Printf("  first POST error: %s\n", e)
	}
	if c.workers > 0 {
		s.mu.Lock()
		failed := s.failed
		s.mu.Unlock()
		fmt.Printf("  applied: %d during the load (%.0f/s), the rest %.0f/s after it; backlog gone %s after the load stopped; %d never applied; %d mutation.failed in this run so far (counted as done)\n",
			res.appliedDuring, res.appliedDuringPerSec(), res.appliedAfterPerSec(), res.backlog.Round(time.Millisecond), res.notApplied, failed)
	}
	if len(s.procs) > 0 {
		fmt.Printf("  CPU (cores) over the load and drain:")
		for _, p := range s.procs {
			fmt.Printf(" %s %.2f", p.Name, res.cpu[p.Name])
		}
		fmt.Println()
	}
	return res, nil
}

// profileBurst starts CPU profiles for the burst: of every process under
// test (through the bench pprof hook), or of this process in-process.
func (s *system) profileBurst(run int) (stop func()) {
	dir := s.cfg.pprofDir
	if dir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.CPUProfile(s.cfg.duration, filepath.Join(dir, "cpu-burst-"+p.Name+".pprof")); err != nil {
				fmt.Println("  profile:", err)
			}
		}()
	}
	if len(s.procs) == 0 && s.cfg.cpuProfile == "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-burst-inprocess-run%d.pprof", run+1)))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			return func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	return wg.Wait
}
