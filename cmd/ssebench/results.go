//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
)

// results gathers every run of every scenario.
type results struct {
	order []scenario
	fan   map[scenario]*fanRuns
	e2e   map[scenario][]*e2eResult
}

// fanRuns are the runs of one fan-out scenario, per server.
type fanRuns struct{ maz, peer []*fanResult }

func (r *results) note(s scenario) {
	for _, o := range r.order {
		if o == s {
			return
		}
	}
	r.order = append(r.order, s)
}

func (r *results) addFan(s scenario, fr *fanResult) {
	r.note(s)
	if r.fan == nil {
		r.fan = map[scenario]*fanRuns{}
	}
	if r.fan[s] == nil {
		r.fan[s] = &fanRuns{}
	}
	if fr.server == "centrifugo" {
		r.fan[s].peer = append(r.fan[s].peer, fr)
	} else {
		r.fan[s].maz = append(r.fan[s].maz, fr)
	}
}

func (r *results) addE2E(s scenario, er *e2eResult) {
	r.note(s)
	if r.e2e == nil {
		r.e2e = map[scenario][]*e2eResult{}
	}
	r.e2e[s] = append(r.e2e[s], er)
}

// series collects one figure over runs.
func series[T any](runs []T, f func(T) float64) benchkit.Series {
	out := make(benchkit.Series, 0, len(runs))
	for _, r := range runs {
		out = append(out, f(r))
	}
	return out
}

func msOf(d time.Duration) float64 { return benchkit.MsOf(d) }

// loads lists the load averages of the runs.
func loads[T any](runs []T, f func(T) string) string {
	var l []string
	for _, r := range runs {
		l = append(l, f(r))
	}
	return strings.Join(l, "; ")
}

// printDetail prints every figure of every scenario, medians over the runs.
func (r *results) printDetail(o options) {
	fmt.Printf("== detail: medians over %d run(s), (min–max) ==\n", o.runs)
	for _, s := range r.order {
		if fr := r.fan[s]; fr != nil {
			fmt.Printf("\n%s, %.0f events/s for %s, drain %s\n", s, o.rate, o.duration, o.drain)
			fmt.Println("| server | deliveries | p50 | p99 | max | p99, lost = never | lost | dup | reconnects | publish p99 | publish errors | all published in | CPU (cores) | CPU µs / frame | write calls / frame | ctx switches / frame | bench CPU (cores) | RSS / idle stream | Redis conns (idle / load) | connect all | load avg |")
			fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
			for _, runs := range [][]*fanResult{fr.maz, fr.peer} {
				if len(runs) == 0 {
					continue
				}
				redis := "—"
				if runs[0].redisIdle >= 0 {
					redis = series(runs, func(x *fanResult) float64 { return float64(x.redisIdle) }).Fmt("") + " / " +
						series(runs, func(x *fanResult) float64 { return float64(x.redisLoad) }).Fmt("")
				}
				fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", runs[0].server,
					series(runs, func(x *fanResult) float64 { return float64(x.delivered) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return msOf(x.lat.P50) }).Fmt("ms"),
					series(runs, func(x *fanResult) float64 { return msOf(x.lat.P99) }).Fmt("ms"),
					series(runs, func(x *fanResult) float64 { return msOf(x.lat.Max) }).Fmt("ms"),
					series(runs, func(x *fanResult) float64 { return msOf(x.p99All) }).Fmt("ms"),
					series(runs, func(x *fanResult) float64 { return float64(x.lost) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return float64(x.dup) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return float64(x.reconnects) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return msOf(x.publish.P99) }).Fmt("ms"),
					series(runs, func(x *fanResult) float64 { return float64(x.publishErrors) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.publishedIn.Seconds() }).Fmt("s"),
					series(runs, func(x *fanResult) float64 { return x.cpu() }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.perFrame(x.load.CPU.Microseconds()) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.perFrame(x.load.WriteCalls) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.perFrame(x.load.CtxSwitches) }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.self.Seconds() / x.loadWall.Seconds() }).Fmt(""),
					series(runs, func(x *fanResult) float64 { return x.rssPerConn }).Fmt("KiB"),
					redis,
					series(runs, func(x *fanResult) float64 { return x.connect.Seconds() }).Fmt("s"),
					loads(runs, func(x *fanResult) string { return x.loadAvg }))
			}
			for _, runs := range [][]*fanResult{fr.maz, fr.peer} {
				for i, x := range runs {
					if len(x.syscalls) > 0 {
						fmt.Printf("%s run %d system calls per frame: %s\n", x.server, i+1, syscallsPerFrame(x))
					}
				}
			}
		}
		if ers := r.e2e[s]; ers != nil {
			fmt.Printf("\n%s end to end, POST %.0f/s for %s, %d worker(s), mix %s, drain %s\n", s, o.e2eRate, o.duration, o.workers, o.mix, o.drain)
			fmt.Println("| accepted | POST → 202 p99 | → enqueued p50 | → enqueued p99 | → applied p50 | → applied p99 | → applied max | → applied p99, missing = never | missing deliveries | mutations not delivered to all | failed | CPU sse / api / worker1 | Centrifugo p99, lost = never (same N) | load avg |")
			fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s |\n",
				series(ers, func(x *e2eResult) float64 { return float64(x.accepted) }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return msOf(x.post.P99) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.lat[kindEnqueued].P50) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.lat[kindEnqueued].P99) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.lat[kindTerminal].P50) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.lat[kindTerminal].P99) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.lat[kindTerminal].Max) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return msOf(x.p99All[kindTerminal]) }).Fmt("ms"),
				series(ers, func(x *e2eResult) float64 { return float64(x.missing()) }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return float64(x.incomplete[kindTerminal]) }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return float64(x.failed) }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return x.cpu["sse-e2e"] }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return x.cpu["api"] }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return x.cpu["worker1"] }).Fmt(""),
				series(ers, func(x *e2eResult) float64 { return peerP99(x) }).Fmt("ms"),
				loads(ers, func(x *e2eResult) string { return x.loadAvg }))
		}
	}
}

// peerP99 is the Centrifugo p99 of an e2e run's peer leg (NaN without one).
func peerP99(x *e2eResult) float64 {
	if x.peer == nil {
		return math.NaN()
	}
	return msOf(x.peer.p99All)
}

// ratioCell prints the median of per-run ratios with their spread.
func ratioCell(rs benchkit.Series) string {
	if len(rs) == 0 || math.IsNaN(rs.Median()) {
		return ""
	}
	if len(rs) == 1 {
		return benchkit.Num(rs[0]) + "×"
	}
	return fmt.Sprintf("%s× (%s–%s)", benchkit.Num(rs.Median()), benchkit.Num(rs.Min()), benchkit.Num(rs.Max()))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// summary renders the issue 9 rows this tool measures. The targets are the
// issue's: against Centrifugo measured in the same run where it names it.
func (r *results) summary(o options) []benchkit.Row {
	var rows []benchkit.Row
	var biggest *fanRuns // the largest fan-out, for the memory row
	biggestN, redisMax := 0, -1
	for _, s := range r.order {
		if fr := r.fan[s]; fr != nil && len(fr.maz) > 0 {
			if s.n > biggestN {
				biggest, biggestN = fr, s.n
			}
			for _, x := range fr.maz {
				redisMax = max(redisMax, x.redisIdle, x.redisLoad)
			}
			p99 := series(fr.maz, func(x *fanResult) float64 { return msOf(x.p99All) })
			lost := series(fr.maz, func(x *fanResult) float64 { return float64(x.lost) })
			row := benchkit.Row{
				Name:    fmt.Sprintf("fan-out only, %s, %d subscribers, %.0f events/s", plural(s.topics, "topology", "topologies"), s.n, o.rate),
				Mazenet: "p99 " + p99.Fmt("ms") + ", lost " + lost.Fmt(""),
				Load:    loads(fr.maz, func(x *fanResult) string { return x.loadAvg }),
			}
			lostOK := lost.Max() == 0
			var ratios benchkit.Series
			if len(fr.peer) > 0 {
				pp99 := series(fr.peer, func(x *fanResult) float64 { return msOf(x.p99All) })
				row.Peer = "p99 " + pp99.Fmt("ms") + ", lost " + series(fr.peer, func(x *fanResult) float64 { return float64(x.lost) }).Fmt("")
				for i := range min(len(fr.maz), len(fr.peer)) {
					ratios = append(ratios, msOf(fr.maz[i].p99All)/msOf(fr.peer[i].p99All))
				}
				row.Ratio = ratioCell(ratios)
			}
			switch {
			case s.topics >= 100:
				row.Target = "p99 ≤ 5 ms (hold)"
				row.Verdict = benchkit.Verdict(p99.Median() <= 5 && lostOK)
			case len(ratios) > 0:
				limit := 1.0
				row.Target = "p99 ≤ Centrifugo's, 0 lost"
				if s.n >= 5000 {
					limit, row.Target = 0.5, "p99 ≤ ½ Centrifugo's, 0 lost"
				}
				row.Verdict = benchkit.Verdict(ratios.Median() <= limit && lostOK)
			default:
				row.Target = "0 lost"
				row.Verdict = benchkit.Verdict(lostOK)
			}
			rows = append(rows, row)
		}
		if ers := r.e2e[s]; ers != nil {
			p99 := series(ers, func(x *e2eResult) float64 { return msOf(x.p99All[kindTerminal]) })
			enq := series(ers, func(x *e2eResult) float64 { return msOf(x.p99All[kindEnqueued]) })
			missing := series(ers, func(x *e2eResult) float64 { return float64(x.missing()) })
			row := benchkit.Row{
				Name: fmt.Sprintf("end to end, POST → `mutation.applied`, %s, %d subscribers, %.0f POST/s, %s",
					plural(s.topics, "topology", "topologies"), s.n, o.e2eRate, plural(o.workers, "worker", "workers")),
				Mazenet: "applied p99 " + p99.Fmt("ms") + "; enqueued p99 " + enq.Fmt("ms") + "; missing " + missing.Fmt("") +
					" of " + series(ers, func(x *e2eResult) float64 { return float64(kinds * x.expected) }).Fmt(""),
				Load: loads(ers, func(x *e2eResult) string { return x.loadAvg }),
			}
			var ratios benchkit.Series
			if ers[0].peer != nil {
				row.Peer = "publish → deliver p99 " + series(ers, peerP99).Fmt("ms")
				for _, x := range ers {
					ratios = append(ratios, msOf(x.p99All[kindTerminal])/peerP99(x))
				}
				row.Ratio = ratioCell(ratios)
			}
			if s.n >= 5000 {
				row.Target = "every event delivered; p99 ≤ 1 s"
				row.Verdict = benchkit.Verdict(missing.Max() == 0 && p99.Median() <= 1000)
			} else {
				row.Target = fmt.Sprintf("p99 ≤ 2 × Centrifugo's publish → deliver p99 at %d", s.n)
				row.Verdict = benchkit.Verdict(len(ratios) > 0 && ratios.Median() <= 2)
			}
			rows = append(rows, row)
		}
	}
	if biggest != nil {
		rss := series(biggest.maz, func(x *fanResult) float64 { return x.rssPerConn })
		row := benchkit.Row{
			Name:    fmt.Sprintf("RSS per idle stream (%d streams); Redis connections per sse process (idle and under load, every fan-out run)", biggestN),
			Target:  "≤ 16 KiB; ≤ 16 (hold)",
			Mazenet: rss.Fmt("KiB") + "; " + fmt.Sprint(redisMax),
			Verdict: benchkit.Verdict(rss.Median() <= 16 && redisMax <= 16 && redisMax >= 0),
			Load:    loads(biggest.maz, func(x *fanResult) string { return x.loadAvg }),
		}
		if len(biggest.peer) > 0 {
			row.Peer = series(biggest.peer, func(x *fanResult) float64 { return x.rssPerConn }).Fmt("KiB") + " (no Redis: memory engine)"
		}
		rows = append(rows, row)
	}
	return rows
}
