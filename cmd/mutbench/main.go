// Command mutbench measures the mutation pipeline end to end, against a
// scratch schema and a private Redis prefix (both removed at exit).
//
// The system under test is either in-process (the default: the API and
// -workers workers wired exactly as cmd/api and cmd/worker wire them, with
// two Postgres pools) or real processes (-api-bin and -worker-bin, or
// -bin-dir with the binaries of scripts/bench-build.sh: one cmd/api and
// -workers cmd/worker processes). Real HTTP requests go over loopback with
// an admin token; the noop materializer is used, so the figures are the
// pipeline's own cost.
//
// Phases (-phases, in this order):
//
//   - latency: an open loop of -rate POSTs per second spread over
//     -topologies live topologies for -duration; latency = POST start →
//     `mutation.applied` read from the all-topologies Redis stream (a
//     blocking XREAD, as the SSE process reads it).
//   - burst: -clients clients POST back to back for -duration while the
//     workers drain; accepted POSTs per second, applied per second during
//     the load and after it, and how long after the load stopped the backlog
//     was gone.
//   - ceiling: pgbench runs the exact enqueue statement of
//     postgres.EnqueueMutation (postgres.EnqueueSQL, the store's own constant) with -clients
//     clients for -duration against its own scratch schema with -topologies
//     topologies: the durable ceiling the burst's accepted rate is compared
//     with.
//
// Every live topology starts with -deckies deckies (a bulk INSERT, not
// mutations), for the apply rate against topology size.
//
// Each of -runs runs builds a fresh schema and system and goes through the
// phases; figures are medians over the runs with the min–max spread, and
// the last lines are a markdown table of the issue 9 rows (also appended to
// -summary).
//
//	go run ./cmd/mutbench                                  # in-process, one worker
//	scripts/bench-build.sh && go run ./cmd/mutbench -bin-dir bin/bench -workers 2 -runs 3
//
// DATABASE_URL (a database the bench may create schemas in) and REDIS_URL
// select the servers.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
)

type config struct {
	dbURL, redisURL      string
	rate                 int
	topologies           int
	deckies              int
	clients              int
	duration             time.Duration
	workers              int
	apiBin, workerBin    string
	runs                 int
	cpuProfile, pprofDir string
	summary, workDir     string
	mix                  string
	phases               string
	pgbench, pgbenchMode string
	drainLimit           time.Duration
	// idempotencyKeys sends a fresh Idempotency-Key with every POST.
	idempotencyKeys bool
}

func main() {
	var c config
	var binDir string
	flag.StringVar(&c.dbURL, "database-url", benchkit.EnvOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "Postgres URL")
	flag.StringVar(&c.redisURL, "redis-url", benchkit.EnvOr("REDIS_URL", "redis://127.0.0.1:6379/15"), "Redis URL")
	flag.IntVar(&c.rate, "rate", 100, "latency: mutations per second")
	flag.IntVar(&c.topologies, "topologies", 20, "live topologies the load is spread over")
	flag.IntVar(&c.deckies, "deckies", 1, "deckies each live topology is seeded with (the gateway and N-1 running members, written by a bulk INSERT, not by mutations): the apply rate against topology size")
	flag.IntVar(&c.clients, "clients", 64, "burst and ceiling: concurrent clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each phase")
	flag.IntVar(&c.workers, "workers", 1, "workers (in-process instances, or processes with -worker-bin)")
	flag.StringVar(&binDir, "bin-dir", "", "directory with api and worker built by scripts/bench-build.sh: run them as processes")
	flag.StringVar(&c.apiBin, "api-bin", "", "run this cmd/api binary instead of the in-process API")
	flag.StringVar(&c.workerBin, "worker-bin", "", "run -workers processes of this cmd/worker binary instead of in-process workers")
	flag.IntVar(&c.runs, "runs", 1, "runs (figures are medians with min–max)")
	flag.BoolVar(&c.idempotencyKeys, "idempotency-keys", false, "send a fresh Idempotency-Key with every POST (measures what recording keys costs)")
	flag.StringVar(&c.phases, "phases", "latency,burst,ceiling", "phases to run: latency, burst (alias throughput), ceiling")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this whole process to this file (in-process mode profiles the API and workers too)")
	flag.StringVar(&c.pprofDir, "pprof-dir", "", "save CPU profiles of the API and worker processes (or of this process in-process) during each burst there")
	flag.StringVar(&c.summary, "summary", "", "append the summary table rows to this file")
	flag.StringVar(&c.workDir, "work-dir", "", "where process logs and pgbench scripts go (default: a temporary directory, removed at exit)")
	flag.StringVar(&c.mix, "mix", "coords,services,add_decky", "comma-separated op mix, cycled: coords (update_lan x), services (update_decky toggle), add_decky (auto IP, Spawn), add_lan (auto subnet: global allocation lock)")
	flag.StringVar(&c.pgbench, "pgbench", "", "pgbench binary (default: PATH, then /usr/lib/postgresql/*/bin)")
	flag.StringVar(&c.pgbenchMode, "pgbench-mode", "prepared", "pgbench query protocol for the ceiling: simple, extended or prepared (the fastest way Postgres can run the statement)")
	flag.DurationVar(&c.drainLimit, "drain-limit", 5*time.Minute, "burst: how long to wait for the backlog")
	flag.Parse()
	if binDir != "" {
		if c.apiBin == "" {
			c.apiBin = filepath.Join(binDir, "api")
		}
		if c.workerBin == "" {
			c.workerBin = filepath.Join(binDir, "worker")
		}
	}
	if c.runs < 1 || c.rate < 1 || c.topologies < 1 || c.clients < 1 || c.workers < 0 || c.deckies < 1 {
		fmt.Fprintln(os.Stderr, "mutbench: -runs, -rate, -topologies, -deckies and -clients must be positive, -workers not negative")
		os.Exit(2)
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(c); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mutbench:", err)
		os.Exit(1)
	}
}

// has reports whether phase is selected.
func (c config) has(phase string) bool {
	for _, p := range strings.Split(c.phases, ",") {
		p = strings.TrimSpace(p)
		if p == phase || (phase == "burst" && p == "throughput") {
			return true
		}
	}
	return false
}

func run(c config) error {
	ctx := context.Background()
	workDir := c.workDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "mutbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		workDir = d
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	if c.pprofDir != "" {
		if err := os.MkdirAll(c.pprofDir, 0o755); err != nil {
			return err
		}
	}
	mode := "in-process API and workers"
	if c.apiBin != "" || c.workerBin != "" {
		mode = fmt.Sprintf("processes (api %s, worker %s)", orInProcess(c.apiBin), orInProcess(c.workerBin))
	}
	fmt.Printf("machine: %s, GOMAXPROCS %d\nload average at start: %s\n", benchkit.Machine(), runtime.GOMAXPROCS(0), benchkit.LoadAvg())
	fmt.Printf("setup: %d topologies of %d decky(ies), %d worker(s), %s, noop materializer, HTTP over loopback, op mix %s\n", c.topologies, c.deckies, c.workers, mode, c.mix)
	var pgbench string
	if c.has("ceiling") {
		var err error
		if pgbench, err = findPgbench(c.pgbench); err != nil {
			return err
		}
	}
	j := benchkit.NewJanitor()
	var all []*runResult
	for r := 0; r < c.runs; r++ {
		res := &runResult{}
		fmt.Printf("\n=== run %d of %d ===\n", r+1, c.runs)
		sys, err := start(ctx, c, workDir, r, j)
		if err != nil {
			return err
		}
		if c.has("latency") {
			res.latency, err = sys.latencyPhase(ctx)
		}
		if err == nil && c.has("burst") {
			res.burst, err = sys.burstPhase(ctx, r)
		}
		sys.stop()
		if err != nil {
			return err
		}
		if c.has("ceiling") {
			// Without a ceiling the other rows still stand.
			if res.ceiling, err = ceiling(ctx, c, pgbench, workDir, j); err != nil {
				fmt.Println("ceiling failed:", err)
				res.ceiling = &ceilingResult{tps: math.NaN(), load: benchkit.LoadAvg()}
			}
		}
		all = append(all, res)
	}
	fmt.Println()
	return benchkit.PrintSummary(c.summary, summary(c, all))
}

func orInProcess(bin string) string {
	if bin == "" {
		return "in-process"
	}
	return bin
}

// runResult is one run's figures.
type runResult struct {
	latency *latencyResult
	burst   *burstResult
	ceiling *ceilingResult
}

func series(runs []*runResult, f func(*runResult) (float64, bool)) benchkit.Series {
	var s benchkit.Series
	for _, r := range runs {
		if v, ok := f(r); ok {
			s = append(s, v)
		}
	}
	return s
}

// pct turns ratios into percentages.
func pct(s benchkit.Series) benchkit.Series {
	out := make(benchkit.Series, len(s))
	for i, v := range s {
		out[i] = 100 * v
	}
	return out
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summary renders the issue 9 rows this tool measures.
func summary(c config, runs []*runResult) []benchkit.Row {
	var rows []benchkit.Row
	load := func(f func(*runResult) string) string {
		var l []string
		for _, r := range runs {
			if s := f(r); s != "" {
				l = append(l, s)
			}
		}
		return strings.Join(l, "; ")
	}
	setup := fmt.Sprintf("%d %s", c.workers, map[bool]string{true: "worker processes", false: "in-process workers"}[c.workerBin != ""])
	if runs[0].latency != nil {
		p50 := series(runs, func(r *runResult) (float64, bool) { return msOf(r.latency.q.P50), r.latency != nil })
		p99 := series(runs, func(r *runResult) (float64, bool) { return msOf(r.latency.q.P99), r.latency != nil })
		missing := series(runs, func(r *runResult) (float64, bool) { return float64(r.latency.missing + r.latency.errors), true })
		rows = append(rows, benchkit.Row{
			Name:    fmt.Sprintf("POST → applied at %d/s over %d topologies (%s)", c.rate, c.topologies, setup),
			Target:  "p50 ≤ 5 ms, p99 ≤ 15 ms",
			Mazenet: "p50 " + p50.Fmt("ms") + ", p99 " + p99.Fmt("ms") + ", not applied or refused " + missing.Fmt(""),
			Verdict: benchkit.Verdict(p50.Median() <= 5 && p99.Median() <= 15 && missing.Max() == 0),
			Load:    load(func(r *runResult) string { return r.latency.load }),
		})
	}
	if runs[0].burst != nil {
		b := func(f func(*burstResult) float64) benchkit.Series {
			return series(runs, func(r *runResult) (float64, bool) { return f(r.burst), true })
		}
		accepted := b(func(x *burstResult) float64 { return x.acceptedPerSec() })
		during := b(func(x *burstResult) float64 { return x.appliedDuringPerSec() })
		after := b(func(x *burstResult) float64 { return x.appliedAfterPerSec() })
		gone := b(func(x *burstResult) float64 { return x.backlog.Seconds() })
		notApplied := b(func(x *burstResult) float64 { return float64(x.notApplied) })
		rows = append(rows, benchkit.Row{
			Name:   fmt.Sprintf("burst: %d clients POSTing for %s, %s, %d decky(ies) per topology", c.clients, c.duration, setup, c.deckies),
			Target: "applied/s ≥ accepted/s; backlog gone ≤ 2 s after the load stops",
			Mazenet: "accepted " + accepted.Fmt("/s") + "; applied " + during.Fmt("/s") + " during, " + after.Fmt("/s") +
				" after; backlog gone " + gone.Fmt("s") + " after; never applied " + notApplied.Fmt("") +
				"; POST errors " + b(func(x *burstResult) float64 { return float64(x.errors) }).Fmt(""),
			Verdict: benchkit.Verdict(during.Median() >= accepted.Median() && gone.Median() <= 2 && notApplied.Max() == 0),
			Load:    load(func(r *runResult) string { return r.burst.load }),
		})
		if runs[0].ceiling != nil {
			ceil := series(runs, func(r *runResult) (float64, bool) { return r.ceiling.tps, true })
			ratio := series(runs, func(r *runResult) (float64, bool) {
				return r.burst.acceptedPerSec() / r.ceiling.tps, r.ceiling.tps > 0
			})
			rows = append(rows, benchkit.Row{
				Name:    fmt.Sprintf("POST throughput, %d clients (burst above, workers draining)", c.clients),
				Target:  "≥ 90 % of the durable ceiling (same run)",
				Mazenet: accepted.Fmt("POST/s"),
				Peer:    fmt.Sprintf("pgbench, exact enqueue statement, %d clients, -M %s: %s", c.clients, c.pgbenchMode, ceil.Fmt("tps")),
				Ratio:   pct(ratio).Fmt("%"),
				Verdict: benchkit.Verdict(ratio.Median() >= 0.9),
				Load:    load(func(r *runResult) string { return r.ceiling.load }),
			})
		}
	} else if runs[0].ceiling != nil {
		rows = append(rows, benchkit.Row{
			Name: fmt.Sprintf("durable ceiling, %d clients", c.clients),
			Peer: series(runs, func(r *runResult) (float64, bool) { return r.ceiling.tps, true }).Fmt("tps"),
			Load: load(func(r *runResult) string { return r.ceiling.load }),
		})
	}
	return rows
}
