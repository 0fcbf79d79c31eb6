//go:build linux

// Command ssebench measures the SSE fan-out side by side with Centrifugo.
// Every scenario starts fresh processes from built binaries against a
// throw-away Postgres schema and Redis prefix, and reads every stream with
// the same subscriber code (raw HTTP/1.1, chunked decoding, SSE frame
// parsing, epoll), so both servers are timed the same way.
//
// Scenarios (-scenarios, comma-separated, each NxT = N subscribers spread
// over T topologies or channels):
//
//   - fanout:NxT — events are published at -rate for -duration, round-robin
//     over the T topics; each payload carries the wall-clock time taken just
//     before the publish call. mazenet: the event is appended to the Redis
//     streams directly (as the relay does) and cmd/sse fans it out.
//     Centrifugo (when -centrifugo-bin is given and T = 1, or -peer all): the
//     same envelope is published with its HTTP API (/api/publish) and
//     delivered over its unidirectional SSE transport. Latency = publish call
//     start → frame parsed by the subscriber; lost = events not received
//     -drain after the last publish returned. Also the RSS per idle stream,
//     the process's Redis connections, CPU, write(2) calls per frame.
//   - e2e:NxT — mazenet end to end: cmd/api, -workers cmd/worker processes
//     and cmd/sse; N subscribers on the topologies' streams; POST
//     /api/v1/topologies/{id}/mutations open loop at -e2e-rate for -duration.
//     Latency = POST start → `mutation.enqueued` / `mutation.applied` frame
//     parsed by each subscriber; every mutation is three frames, and each
//     missing delivery is counted. Compared with Centrifugo's fan-out at the
//     same N in the same run.
//
// Each of -runs runs goes through every scenario; figures are medians over
// the runs with the min–max spread, and the last lines are a markdown table
// of the issue 9 rows (also appended to -summary). scripts/bench.sh builds
// the binaries and runs every row; see docs/BENCHMARKS.md.
//
//	scripts/bench-build.sh && scripts/bench-peer.sh
//	go run ./cmd/ssebench -bin-dir bin/bench -scenarios fanout:1000x1,e2e:1000x1 -runs 3
//
// Subscribers are spread over users of -per-user connections each (the sse
// default cap, 5), so every handshake takes a real slot. The subscribers and
// the publisher run in this process, on the same machine as the servers:
// Linux only (epoll, /proc).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/auth"
)

func main() {
	var o options
	var subs, topos, scenarios, binDir string
	flag.StringVar(&binDir, "bin-dir", "", "directory holding api, worker, sse (scripts/bench-build.sh) and centrifugo (scripts/bench-peer.sh); sets the -*-bin flags not given")
	flag.StringVar(&o.sseBin, "sse-bin", "", "path of a built cmd/sse")
	flag.StringVar(&o.apiBin, "api-bin", "", "path of a built cmd/api (e2e scenarios)")
	flag.StringVar(&o.workerBin, "worker-bin", "", "path of a built cmd/worker (e2e scenarios)")
	flag.StringVar(&o.centrifugoBin, "centrifugo-bin", "", "path of a Centrifugo v6 binary (scripts/bench-peer.sh); empty: no side-by-side figures")
	flag.StringVar(&o.peer, "peer", "single", "which fan-out scenarios also run Centrifugo: single (one topic), all, none; e2e scenarios always get a Centrifugo fan-out at the same N")
	flag.StringVar(&o.dsn, "database-url", benchkit.EnvOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres database in which a temporary schema is created and dropped")
	flag.StringVar(&o.redisURL, "redis-url", benchkit.EnvOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis; keys go under a temporary prefix")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated fanout:NxT and e2e:NxT (default: fanout over -n × -topologies)")
	flag.StringVar(&subs, "n", "1000,5000", "subscriber counts of the default fan-out scenarios")
	flag.StringVar(&topos, "topologies", "1,100", "topology counts of the default fan-out scenarios")
	flag.IntVar(&o.runs, "runs", 1, "runs of every scenario (figures are medians with min–max)")
	flag.Float64Var(&o.rate, "rate", 50, "fan-out: events published per second (round-robin over the topics)")
	flag.Float64Var(&o.e2eRate, "e2e-rate", 50, "e2e: POST /mutations per second (round-robin over the topologies)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long events are published (and mutations POSTed)")
	flag.DurationVar(&o.drain, "drain", 3*time.Second, "wait after the last publish (or the last POST's answer) before counting what is missing")
	flag.IntVar(&o.workers, "workers", 1, "e2e: worker processes")
	flag.StringVar(&o.mix, "e2e-mix", "coords", "e2e op mix, cycled: coords (update_lan x: one transaction), services (update_decky toggle: claim, op, finish)")
	flag.IntVar(&o.perUser, "per-user", 5, "connections per user (the sse per-user cap)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "idle time before reading RSS")
	flag.StringVar(&o.pprofDir, "pprof-dir", "", "save CPU profiles of the servers under load there (and sse heap/goroutines when idle)")
	flag.BoolVar(&o.syscalls, "syscalls", false, "count the servers' system calls under load with `perf stat` (adds a little overhead per call)")
	flag.StringVar(&o.summary, "summary", "", "append the summary table rows to this file")
	flag.StringVar(&o.workDir, "work-dir", "", "where process logs and the Centrifugo config go (default: a temporary directory, removed unless a run fails)")
	flag.Parse()
	if binDir != "" {
		for _, b := range []struct {
			p    *string
			name string
		}{{&o.sseBin, "sse"}, {&o.apiBin, "api"}, {&o.workerBin, "worker"}, {&o.centrifugoBin, "centrifugo"}} {
			if *b.p == "" {
				if _, err := os.Stat(filepath.Join(binDir, b.name)); err == nil {
					*b.p = filepath.Join(binDir, b.name)
				}
			}
		}
	}
	var err error
	if scenarios == "" {
		var ns, ts []int
		if ns, err = ints(subs); err == nil {
			ts, err = ints(topos)
		}
		for _, n := range ns {
			for _, t := range ts {
				if t <= n {
					o.scenarios = append(o.scenarios, scenario{kind: "fanout", n: n, topics: t})
				}
			}
		}
	} else {
		o.scenarios, err = parseScenarios(scenarios)
	}
	if err == nil {
		err = o.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(2)
	}
	if o.pprofDir != "" {
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "ssebench:", err)
			os.Exit(1)
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ssebench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	sseBin, apiBin, workerBin, centrifugoBin string
	peer                                     string
	dsn, redisURL                            string
	scenarios                                []scenario
	runs                                     int
	rate, e2eRate                            float64
	duration, drain, settle                  time.Duration
	workers, perUser                         int
	mix                                      string
	pprofDir, summary, workDir               string
	syscalls                                 bool
}

// scenario is one fanout:NxT or e2e:NxT.
type scenario struct {
	kind      string // "fanout" or "e2e"
	n, topics int
}

func (s scenario) String() string { return fmt.Sprintf("%s:%dx%d", s.kind, s.n, s.topics) }

func parseScenarios(s string) ([]scenario, error) {
	var out []scenario
	for _, f := range strings.Split(s, ",") {
		kind, nt, ok := strings.Cut(strings.TrimSpace(f), ":")
		ns, ts, ok2 := strings.Cut(nt, "x")
		n, err1 := strconv.Atoi(ns)
		t, err2 := strconv.Atoi(ts)
		if !ok || !ok2 || err1 != nil || err2 != nil || n < 1 || t < 1 || t > n || (kind != "fanout" && kind != "e2e") {
			return nil, fmt.Errorf("bad scenario %q (want fanout:NxT or e2e:NxT with 1 ≤ T ≤ N)", f)
		}
		out = append(out, scenario{kind: kind, n: n, topics: t})
	}
	return out, nil
}

func (o *options) check() error {
	if o.sseBin == "" {
		return errors.New("-sse-bin (or -bin-dir) is required: scripts/bench-build.sh builds bin/bench/sse")
	}
	for _, s := range o.scenarios {
		if s.kind == "e2e" && (o.apiBin == "" || o.workerBin == "") {
			return errors.New("e2e scenarios need -api-bin and -worker-bin (or -bin-dir)")
		}
	}
	if o.runs < 1 || o.rate <= 0 || o.e2eRate <= 0 || o.workers < 1 || o.perUser < 1 {
		return errors.New("-runs, -rate, -e2e-rate, -workers and -per-user must be positive")
	}
	switch o.peer {
	case "single", "all", "none":
	default:
		return fmt.Errorf("-peer %q: want single, all or none", o.peer)
	}
	for _, k := range strings.Split(o.mix, ",") {
		if k != "coords" && k != "services" {
			return fmt.Errorf("-e2e-mix: unknown op %q", k)
		}
	}
	return nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is the state shared by every scenario of the invocation.
type bench struct {
	o       options
	scratch *benchkit.Scratch
	rdb     *redis.Client
	prefix  string // Redis key prefix of the run
	queue   string // asynq queue of the run
	secret  string
	tokens  *auth.Tokens
	workDir string
	janitor *benchkit.Janitor // undoes everything if the tool is interrupted
}

func run(o options) error {
	ctx := context.Background()
	fdLimit := benchkit.RaiseFDLimit()
	need := 0
	for _, s := range o.scenarios {
		need = max(need, s.n)
	}
	fmt.Printf("machine: %s\nload average at start: %s; open-files limit %d\n", benchkit.Machine(), benchkit.LoadAvg(), fdLimit)
	if fdLimit < uint64(need+1024) {
		return fmt.Errorf("open-files limit %d is too low for %d subscribers (each costs a descriptor here and one in the server): raise it with `ulimit -n %d` (the hard limit bounds what this tool can raise itself)", fdLimit, need, need*2+1024)
	}
	if d, err := loopbackWriteCost(); err == nil {
		fmt.Printf("floor: one %d-byte write to a loopback TCP socket (a reader draining it) costs %s here\n", floorFrameSize, d)
	}
	if o.syscalls {
		if _, err := exec.LookPath("perf"); err != nil {
			return errors.New("-syscalls needs perf (apt-get install linux-perf)")
		}
	}

	workDir := o.workDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "ssebench-")
		if err != nil {
			return err
		}
		workDir = d
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	b := &bench{o: o, secret: benchkit.RandHex(24), workDir: workDir, janitor: benchkit.NewJanitor()}
	b.prefix = "ssebench:" + benchkit.RandHex(6) + ":"
	b.queue = "ssebench_" + benchkit.RandHex(6)
	b.tokens = auth.NewTokens([]byte(b.secret), 0)
	var err error
	if b.scratch, err = benchkit.NewScratch(ctx, o.dsn, "ssebench_"); err != nil {
		return err
	}
	defer b.janitor.Add(b.scratch.Close)()
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return err
	}
	b.rdb = redis.NewClient(ropt)
	defer b.rdb.Close()
	defer b.janitor.Add(func() { benchkit.CleanRedis(b.rdb, b.queue, b.prefix+"*", "asynq:{"+b.queue+"}*") })()

	res := &results{}
	for r := 0; r < o.runs; r++ {
		peerCache := map[[2]int]*fanResult{} // Centrifugo fan-out of this run by (N, T)
		for _, s := range o.scenarios {
			switch s.kind {
			case "fanout":
				withPeer := o.centrifugoBin != "" && (o.peer == "all" || (o.peer == "single" && s.topics == 1))
				order := []string{"mazenet", "centrifugo"}
				if r%2 == 1 { // alternate who goes first, so drift does not favour one
					order[0], order[1] = order[1], order[0]
				}
				for _, who := range order {
					if who == "centrifugo" && !withPeer {
						continue
					}
					fr, err := b.fanout(ctx, r, s, who)
					if err != nil {
						return fmt.Errorf("run %d %s %s: %w", r+1, s, who, err)
					}
					res.addFan(s, fr)
					if who == "centrifugo" {
						peerCache[[2]int{s.n, s.topics}] = fr
					}
				}
			case "e2e":
				er, err := b.e2e(ctx, r, s)
				if err != nil {
					return fmt.Errorf("run %d %s: %w", r+1, s, err)
				}
				if o.centrifugoBin != "" {
					key := [2]int{s.n, s.topics}
					if peerCache[key] == nil {
						fr, err := b.fanout(ctx, r, scenario{kind: "fanout", n: s.n, topics: s.topics}, "centrifugo")
						if err != nil {
							return fmt.Errorf("run %d %s centrifugo: %w", r+1, s, err)
						}
						peerCache[key] = fr
					}
					er.peer = peerCache[key]
				}
				res.addE2E(s, er)
			}
		}
	}
	if o.workDir == "" {
		os.RemoveAll(workDir)
	}
	fmt.Println()
	res.printDetail(o)
	return benchkit.PrintSummary(o.summary, res.summary(o))
}

// startCPUProfile profiles this tool itself (the subscribers and the
// publisher) while a scenario loads; the returned func stops it.
func (b *bench) startCPUProfile(name string) func() {
	if b.o.pprofDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(b.o.pprofDir, name))
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
