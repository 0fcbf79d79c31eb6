package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scale is the size of a run: the short version (inside `make test`) or the
// full one (`make chaos`).
type scale struct {
	mode           string
	topos          int
	rate           float64 // mutations/s over all topologies
	clientsPerTopo int
	workerKills    int
	redisRestarts  int
	pgOutages      int
	pgDown         time.Duration
	sseClients     int
	sseEventRate   float64 // events/s in the sse-kill scenario
	hotRate        float64 // mutations/s on the older-snapshot scenario's hot topology
	pauses         int     // SIGSTOPs of a drainer
	slotLease      time.Duration
	// slack stretches the bounds the scenarios state: the short version
	// shares 2 cores with the whole `go test -race ./...` run, the full one
	// asserts the bounds as stated (slack 1).
	slack float64
	// wait is the generous deadline of every wait for a condition.
	wait time.Duration
}

// scaleFor returns the counts of a mode ("short" or "full").
func scaleFor(mode string) (scale, bool) {
	switch mode {
	case "short":
		return scale{mode: mode, topos: 3, rate: 12, clientsPerTopo: 2, workerKills: 6, redisRestarts: 2,
			pgOutages: 1, pgDown: 5 * time.Second, sseClients: 150, sseEventRate: 15, hotRate: 25, pauses: 1,
			slotLease: 10 * time.Second, slack: 3, wait: 40 * time.Second}, true
	case "full":
		return scale{mode: mode, topos: 10, rate: 50, clientsPerTopo: 3, workerKills: 50, redisRestarts: 5,
			pgOutages: 5, pgDown: 5 * time.Second, sseClients: 1000, sseEventRate: 50, hotRate: 25, pauses: 3,
			slotLease: 45 * time.Second, slack: 1, wait: 2 * time.Minute}, true
	}
	return scale{}, false
}

// Product settings shared by the scenarios (shorter than production's 10 s
// sweep and 15 s lease so the runs stay short; every bound is stated
// relative to them).
const (
	sweepInterval = 2 * time.Second
	drainLease    = 5 * time.Second
	keepalive     = 5 * time.Second
)

// TestChaos runs every scenario once, one after the other (they kill shared
// pieces such as the PostgreSQL cluster, and the machine is small).
func TestChaos(t *testing.T) {
	mode := os.Getenv("MAZENET_CHAOS")
	switch {
	case mode == "off":
		t.Skip("MAZENET_CHAOS=off")
	case testing.Short():
		t.Skip("-short: the fault suite starts its own servers and takes minutes")
	case mode == "":
		mode = "short"
	}
	sc, ok := scaleFor(mode)
	if !ok {
		t.Fatalf("MAZENET_CHAOS=%q: want short, full or off", mode)
	}
	ctx := t.Context()
	s, skip, err := newSuite(ctx)
	if skip != "" {
		t.Skip("fault suite skipped: " + skip + " (scripts/chaos.sh and scripts/test.sh install them with apt)")
	}
	t.Cleanup(func() {
		if s != nil {
			writeRows(s.rows)
			s.close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range []struct {
		name string
		run  func(*testing.T, *suite, scale)
	}{
		{"worker_kills", scenarioWorkerKills},
		{"redis_restart_empty", scenarioRedisEmpty},
		{"redis_older_snapshot", scenarioRedisSnapshot},
		{"postgres_crash", scenarioPostgresCrash},
		{"sse_kill", scenarioSSEKill},
		{"drainer_paused", scenarioDrainerPaused},
		{"teardown_and_lifecycle_kills", scenarioTeardown},
	} {
		t.Run(sn.name, func(t *testing.T) {
			start := time.Now()
			sn.run(t, s, sc)
			t.Logf("%s took %s", sn.name, time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// env is one running scenario.
type env struct {
	t        *testing.T
	s        *suite
	ctx      context.Context
	sc       scale
	d        *deployment
	census   *census
	api      *apiClient
	ld       *loader
	a        *audit
	rdb      *redis.Client
	user     string
	topos    []string
	clients  []*sseClient
	pool     *clientPool
	baseline int64
	stuck    bool
}

// knobsFor returns the default product knobs of a scenario.
func knobsFor(sc scale) knobs {
	return knobs{workers: 3, sses: 1, sweep: sweepInterval, lease: drainLease, slotLease: sc.slotLease,
		keepalive: keepalive, maxPerUser: 5000}
}

// setup deploys the product, logs in and creates ntopos active topologies.
func setup(t *testing.T, s *suite, sc scale, name string, k knobs, ntopos int) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, ctx: ctx, sc: sc, d: deploy(ctx, t, s, k), census: newCensus()}
	e.api = newAPIClient(e.d.apiURL, e.census)
	e.ld = newLoader(e.api)
	e.a = newAudit(name, sc.mode, e.census)
	e.s = s
	e.rdb = e.d.redis.client()
	t.Cleanup(func() { e.rdb.Close() })
	// The login is set-up, not a check: on a machine busy with the whole
	// `go test ./...` its bcrypt can outlast the client's 15 s timeout, so a
	// login that got no answer is tried again (the limiter allows 10).
	var err error
	for try := 1; ; try++ {
		var st int
		if st, err = e.api.login(ctx); err == nil || st != 0 || try == 3 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if e.user, err = adminUUID(ctx, e.d.db); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ntopos; i++ {
		id, err := e.api.createActive(ctx, fmt.Sprintf("chaos-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		e.topos = append(e.topos, id)
	}
	if e.baseline, err = statusBaseline(ctx, e.d.db); err != nil {
		t.Fatal(err)
	}
	return e
}

// attach starts per clients on each topology (plus extra, already built)
// and waits until every one has its snapshot.
func (e *env) attach(per int, extra ...*sseClient) {
	e.t.Helper()
	hc := sseHTTPClient()
	n := 0
	for _, id := range e.topos {
		for j := 0; j < per; j++ {
			c := newSSEClient(fmt.Sprintf("c%d", n), id, e.d.sseURLs, n, e.api, hc, 3*keepalive)
			// No client here ever lags by the 1,000 retained events, so
			// `resume: incomplete` would hide a loss from it.
			c.noIncomplete = true
			e.clients = append(e.clients, c)
			n++
		}
	}
	e.clients = append(e.clients, extra...)
	e.pool = startClients(e.ctx, e.clients)
	e.t.Cleanup(e.pool.stop)
	if _, ok := waitFor(e.ctx, e.sc.wait, 100*time.Millisecond, func() bool { return e.pool.liveCount() == len(e.clients) }); !ok {
		e.t.Fatalf("only %d of %d SSE clients got their snapshot", e.pool.liveCount(), len(e.clients))
	}
}

// fault marks a fault window in the census.
func (e *env) fault(on bool) { e.census.fault.Store(on) }

// pause waits d as part of the fault schedule (not a check).
func (e *env) pause(d time.Duration) {
	select {
	case <-e.ctx.Done():
	case <-time.After(d):
	}
}

// until waits for a recovery condition with the generous deadline d. Once
// one recovery wait has failed the scenario is known broken, and later ones
// wait only what a working product needs at most (a lease, two sweeps, one
// slow materialize and 5 s), so a failing run reports quickly instead of
// adding up deadlines.
func (e *env) until(d, step time.Duration, cond func() bool) (time.Duration, bool) {
	if e.stuck {
		d = min(d, e.d.k.lease+2*e.d.k.sweep+e.d.k.matDelay+5*time.Second)
	}
	took, ok := waitFor(e.ctx, d, step, cond)
	if !ok {
		e.stuck = true
	}
	return took, ok
}

// bound stretches a stated bound by the run's slack.
func (e *env) bound(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.sc.slack)
}

// drained waits until every accepted mutation is terminal and no mutation
// of the scenario's topologies is open, and records the time since from.
func (e *env) drained(what string, from time.Time, bound time.Duration) {
	_, ok := e.until(e.sc.wait, 100*time.Millisecond, func() bool {
		return openMutations(e.ctx, e.d.db, e.topos) == 0 && terminal(e.ctx, e.d.db, mids(e.ld.accepted()))
	})
	e.a.recovered(what, time.Since(from), ok, bound)
}

// caughtUp waits until every client saw the terminal event of every
// accepted mutation, and records the time since from.
func (e *env) caughtUp(what string, from time.Time, bound time.Duration, clients []*sseClient) {
	acc := e.ld.accepted()
	_, ok := e.until(e.sc.wait, 200*time.Millisecond, func() bool {
		return caughtUp(clients, acc, mutationStates(e.ctx, e.d.db, mids(acc)))
	})
	e.a.recovered(what, time.Since(from), ok, bound)
}

// settle waits, once the load has stopped, for the backlog to drain and
// the clients to catch up, and records both times.
func (e *env) settle() {
	stopped := time.Now()
	e.drained("backlog drained after the load stopped", stopped, 0)
	e.caughtUp("clients caught up after the load stopped", stopped, 0, e.clients)
}

// finish audits mutations and clients, checks the slots return to 0 once
// the clients leave, that no product process died by itself and that no
// forbidden status was answered, then reports.
func (e *env) finish() {
	rows := e.a.auditMutations(e.ctx, e.d.db, e.ld, e.topos)
	if len(e.clients) > 0 {
		e.a.auditClients(e.ctx, e.d.db, e.clients, rows, e.topos, e.baseline)
		e.pool.stop()
		left := time.Now()
		_, ok := e.until(e.d.k.slotLease+e.sc.wait, 200*time.Millisecond, func() bool {
			live, _, err := slotsLive(e.ctx, e.rdb, e.user)
			return err == nil && live == 0
		})
		e.a.recovered("slots back to 0 after clients left", time.Since(left), ok, 0)
	}
	e.crashCheck()
	e.s.rows = append(e.s.rows, e.a.finish(e.t))
}

// crashCheck reports product processes that exited by themselves and
// forbidden answers.
func (e *env) crashCheck() {
	if cr := e.d.crashes(); len(cr) > 0 {
		e.a.group(len(cr), "product processes exited by themselves (recovery must need no restart)", cr)
	}
	if n, bad := e.census.badAnswers(); n > 0 {
		e.a.group(n, "forbidden answers (SYSTEM §3.7: 503 JSON with Retry-After while a dependency is down, never 500)", bad)
	}
}

// scenarioWorkerKills: kill -9 a worker every 1–3 s while mutations flow;
// the backlog must drain within the drain lease + 5 s of the last kill.
func scenarioWorkerKills(t *testing.T, s *suite, sc scale) {
	e := setup(t, s, sc, "worker kill -9", knobsFor(sc), sc.topos)
	e.a.load = fmt.Sprintf("%.0f mutations/s over %d topologies, %d SSE clients, 3 workers", sc.rate, sc.topos, sc.topos*sc.clientsPerTopo)
	e.a.faults = fmt.Sprintf("%d × kill -9 of a random worker every 1–3 s (restarted at once)", sc.workerKills)
	e.attach(sc.clientsPerTopo)
	stop := e.ld.background(e.ctx, uniformRates(e.topos, sc.rate))
	e.pause(2 * time.Second)
	e.fault(true)
	var lastKill time.Time
	holders := 0
	for i := 0; i < sc.workerKills && e.ctx.Err() == nil; i++ {
		e.pause(time.Second + rand.N(2*time.Second))
		// Two kills in three hit a worker holding a drain lease (mid-apply),
		// the others a random one.
		w := e.leaseHolder()
		if live := e.d.liveWorkers(); w == nil || rand.N(3) == 0 {
			w = live[rand.N(len(live))]
		} else {
			holders++
		}
		w.kill()
		lastKill = time.Now()
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	e.fault(false)
	e.a.notef("%d of the kills hit the holder of a drain lease (mid-apply)", holders)
	e.drained("backlog drained after the last kill", lastKill, e.bound(drainLease+5*time.Second))
	e.caughtUp("clients caught up after the last kill", lastKill, 0, e.clients)
	e.finish()
}

// prober keeps asking one api read, one api write that needs Redis (an SSE
// ticket) and one sse handshake (Authorization header, no ticket) every
// 300 ms, so the census covers every process while a dependency is down.
func (e *env) prober() (stop func()) {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	hc := &http.Client{Timeout: 15 * time.Second}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			topo := e.topos[rand.N(len(e.topos))]
			_, _ = e.api.status(ctx, topo)
			_, _, _ = e.api.ticket(ctx)
			for _, u := range e.d.sseURLs {
				req, _ := http.NewRequestWithContext(ctx, "GET", u+"/api/v1/topologies/"+topo+"/events", nil)
				req.Header.Set("Authorization", "Bearer "+e.api.token)
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						e.census.record("GET sse events (probe)", 0, nil, nil, err)
					}
					continue
				}
				var body []byte
				if resp.StatusCode != 200 {
					body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
				}
				resp.Body.Close()
				e.census.record("GET sse events (probe)", resp.StatusCode, resp.Header, body, nil)
			}
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// leaseHolder returns a running worker that holds a topology's drain lease
// (the pid in drain_owner "host:pid:…"), or nil.
func (e *env) leaseHolder() *proc {
	rows, err := e.d.db.QueryContext(e.ctx, `SELECT drain_owner FROM topologies
	  WHERE drain_owner IS NOT NULL AND drain_until > now()`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var holders []*proc
	for rows.Next() {
		var owner string
		if rows.Scan(&owner) != nil {
			continue
		}
		if w := e.d.workerByPID(ownerPID(owner)); w != nil {
			holders = append(holders, w)
		}
	}
	if len(holders) == 0 {
		return nil
	}
	return holders[rand.N(len(holders))]
}

// ownerPID extracts the pid of a drain owner "host:pid:…" (0 if none).
func ownerPID(owner string) int {
	parts := strings.Split(owner, ":")
	if len(parts) < 2 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[1])
	return pid
}

// scenarioRedisEmpty: Redis killed and restarted empty several times under
// load; wake-ups lost with it must be recovered within a sweep interval.
func scenarioRedisEmpty(t *testing.T, s *suite, sc scale) {
	e := setup(t, s, sc, "Redis restarted empty", knobsFor(sc), sc.topos)
	e.a.load = fmt.Sprintf("%.0f mutations/s over %d topologies, %d SSE clients, 3 workers", sc.rate, sc.topos, sc.topos*sc.clientsPerTopo)
	e.a.faults = fmt.Sprintf("%d × Redis kill -9, 2 s down, restarted empty", sc.redisRestarts)
	e.attach(sc.clientsPerTopo)
	stopProbe := e.prober()
	stop := e.ld.background(e.ctx, uniformRates(e.topos, sc.rate))
	e.pause(2 * time.Second)
	var lastUp time.Time
	for i := 0; i < sc.redisRestarts && e.ctx.Err() == nil; i++ {
		e.pause(2*time.Second + rand.N(2*time.Second))
		e.fault(true)
		e.d.redis.kill()
		if err := e.d.redis.removeRDB(); err != nil {
			t.Fatal(err)
		}
		e.pause(2 * time.Second)
		if err := e.d.redis.start(e.ctx); err != nil {
			t.Fatal(err)
		}
		lastUp = time.Now()
		e.fault(false)
		// Every mutation accepted so far (including during the outage, whose
		// wake-up died with Redis) must be applied within a sweep interval
		// plus one apply.
		before := e.ld.accepted()
		_, ok := e.until(e.sc.wait, 100*time.Millisecond, func() bool { return terminal(e.ctx, e.d.db, mids(before)) })
		e.a.recovered(fmt.Sprintf("restart %d: wake-ups recovered", i+1), time.Since(lastUp), ok, e.bound(sweepInterval+2*time.Second))
	}
	e.pause(2 * time.Second)
	stop()
	stopProbe()
	e.settle()
	e.finish()
}

// scenarioRedisSnapshot: Redis restarted from an RDB taken before more than
// 1,000 events of one topology (stale watermarks and stream entries). No
// loop may spin, new events reach clients within a sweep interval, and only
// a client that really lost events is told `resume: incomplete`.
func scenarioRedisSnapshot(t *testing.T, s *suite, sc scale) {
	e := setup(t, s, sc, "Redis restored from an older snapshot", knobsFor(sc), sc.topos)
	hot := e.topos[0]
	rates := uniformRates(e.topos[1:], sc.rate/2)
	rates[hot] = sc.hotRate
	e.a.load = fmt.Sprintf("%.0f mutations/s on a hot topology + %.0f/s over %d others, %d live SSE clients + 1 stale", sc.hotRate, sc.rate/2, sc.topos-1, sc.topos*sc.clientsPerTopo)
	e.a.faults = "Redis SAVE at T, > 1,000 events of the hot topology after T, kill -9, restart on the RDB of T"
	stale := newSSEClient("stale", hot, e.d.sseURLs, 0, e.api, sseHTTPClient(), 3*keepalive)
	e.attach(sc.clientsPerTopo)
	stalePool := startClients(e.ctx, []*sseClient{stale})
	if _, ok := waitFor(e.ctx, e.sc.wait, 50*time.Millisecond, stale.isLive); !ok {
		t.Fatal("stale client did not connect")
	}
	e.clients = append(e.clients, stale)

	stopProbe := e.prober()
	stop := e.ld.background(e.ctx, rates)
	e.pause(3 * time.Second)
	stalePool.stop() // leaves with the id it saw last; comes back after the restore
	staleID := stale.lastSeenID()
	if err := e.d.redis.save(e.ctx, "old.rdb"); err != nil {
		t.Fatal(err)
	}
	hotAt := func() int {
		n := 0
		for _, a := range e.ld.accepted() {
			if a.Topo == hot {
				n++
			}
		}
		return n
	}
	atT := hotAt()
	// > 1,000 events (3 per mutation) on the hot topology after T, then one
	// sweep interval for the sweep to prune.
	need := 1100/3 + 1
	if _, ok := waitFor(e.ctx, e.sc.wait*2, 200*time.Millisecond, func() bool { return hotAt()-atT >= need }); !ok {
		t.Fatalf("only %d mutations accepted on the hot topology after the snapshot, want %d", hotAt()-atT, need)
	}
	e.pause(sweepInterval + time.Second)
	e.fault(true)
	e.d.redis.kill()
	stop()
	if err := e.d.redis.restoreRDB("old.rdb"); err != nil {
		t.Fatal(err)
	}
	if err := e.d.redis.start(e.ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	e.fault(false)
	e.a.notef("stale client left at id %s; %d mutations (≥ %d events) of the hot topology accepted after T", staleID, hotAt()-atT, 3*(hotAt()-atT))

	// New events reach the live clients within a sweep interval: one probe
	// mutation per topology, after whatever backlog the restore left.
	var probes []*attempt
	for _, id := range e.topos {
		if a := e.ld.next(e.ctx, id); a != nil && a.Status == 202 {
			probes = append(probes, a)
		}
	}
	live := e.clients[:len(e.clients)-1]
	_, ok := e.until(e.sc.wait, 50*time.Millisecond, func() bool {
		return caughtUp(live, probes, mutationStates(e.ctx, e.d.db, mids(probes)))
	})
	e.a.recovered("new events reached every live client after the restore", time.Since(up), ok, e.bound(sweepInterval+time.Second))

	stalePool = startClients(e.ctx, []*sseClient{stale})
	t.Cleanup(stalePool.stop)
	stop = e.ld.background(e.ctx, rates)
	e.pause(3 * time.Second)
	stop()
	stopProbe()
	e.settle()

	// No livelock: once the work is done the processes go back to idle.
	ps := append(e.d.liveWorkers(), e.d.sses...)
	cpu, err := cpuOver(ps, 3*time.Second)
	if err != nil {
		e.a.failf("CPU sample: %v", err)
	}
	var parts []string
	for _, p := range ps {
		share := cpu[p.name]
		parts = append(parts, fmt.Sprintf("%s %.0f%%", p.name, share*100))
		if share > 0.10 {
			e.a.failf("%s uses %.0f%% of a core 3 s after the load stopped (the backlog drain waited for first): a relay or sweep loop spins", p.name, share*100)
		}
	}
	e.a.notef("CPU after recovery: %s", strings.Join(parts, ", "))
	_, conns, _, _ := stale.snapshot()
	for _, c := range conns {
		if c.ResumeID == staleID && c.Resume != "" {
			e.a.notef("stale client resumed from %s and was told resume: %s", staleID, c.Resume)
		}
	}
	stalePool.stop()
	e.finish()
}

// scenarioPostgresCrash: PostgreSQL crash-stopped for 5 s and restarted,
// under load: 503 JSON with Retry-After during each outage, never 500, and
// nothing accepted lost.
func scenarioPostgresCrash(t *testing.T, s *suite, sc scale) {
	e := setup(t, s, sc, "PostgreSQL crash-stop", knobsFor(sc), sc.topos)
	e.a.load = fmt.Sprintf("%.0f mutations/s over %d topologies, %d SSE clients, 3 workers", sc.rate, sc.topos, sc.topos*sc.clientsPerTopo)
	e.a.faults = fmt.Sprintf("%d × PostgreSQL immediate shutdown (crash), %s down, restarted with crash recovery", sc.pgOutages, sc.pgDown)
	e.attach(sc.clientsPerTopo)
	stopProbe := e.prober()
	stop := e.ld.background(e.ctx, uniformRates(e.topos, sc.rate))
	e.pause(2 * time.Second)
	var lastUp time.Time
	for i := 0; i < sc.pgOutages && e.ctx.Err() == nil; i++ {
		e.pause(2*time.Second + rand.N(2*time.Second))
		e.fault(true)
		s.pg.crashStop()
		e.pause(sc.pgDown)
		if err := s.pg.start(e.ctx); err != nil {
			t.Fatal(err)
		}
		lastUp = time.Now()
		e.fault(false)
		before := e.ld.accepted()
		_, ok := e.until(e.sc.wait, 100*time.Millisecond, func() bool { return terminal(e.ctx, e.d.db, mids(before)) })
		e.a.recovered(fmt.Sprintf("outage %d: accepted work applied", i+1), time.Since(lastUp), ok, 0)
	}
	e.pause(2 * time.Second)
	stop()
	stopProbe()
	during := true
	if e.census.count(503, &during) == 0 {
		e.a.failf("no 503 was answered while PostgreSQL was down (every route must answer 503 JSON with Retry-After)")
	}
	e.settle()
	e.finish()
}

// scenarioSSEKill: kill -9 one of two sse processes holding the clients;
// every client resumes on the other with no gap and no duplicate, and the
// dead process's slots are free within 60 s.
func scenarioSSEKill(t *testing.T, s *suite, sc scale) {
	k := knobsFor(sc)
	k.sses = 2
	e := setup(t, s, sc, "sse kill -9", k, sc.topos)
	per := sc.sseClients / sc.topos
	e.a.load = fmt.Sprintf("%.0f events/s over %d topologies, %d SSE clients on 2 sse processes", sc.sseEventRate, sc.topos, per*sc.topos)
	e.a.faults = "kill -9 of the sse process holding half of the clients"
	e.attach(per)
	stop := e.ld.background(e.ctx, uniformRates(e.topos, sc.sseEventRate/3))
	e.pause(3 * time.Second)
	e.fault(true)
	e.d.sses[0].kill()
	killed := time.Now()
	total := len(e.clients)
	_, ok := e.until(e.sc.wait, 100*time.Millisecond, func() bool { return e.pool.liveCount() == total })
	e.a.recovered("every client resumed on the other process", time.Since(killed), ok, 0)
	e.fault(false)
	_, ok = e.until(60*time.Second+e.sc.wait, 200*time.Millisecond, func() bool {
		live, _, err := slotsLive(e.ctx, e.rdb, e.user)
		return err == nil && live == int64(e.pool.liveCount()) && e.pool.liveCount() == total
	})
	e.a.recovered("dead process's slots freed", time.Since(killed), ok, 60*time.Second)
	e.pause(2 * time.Second)
	stop()
	e.settle()
	e.finish()
}

// scenarioDrainerPaused: a drainer SIGSTOPped mid-materialize for longer
// than its lease, then SIGCONT: the materializer call log must show no
// out-of-order or stale call (SYSTEM §3.8).
func scenarioDrainerPaused(t *testing.T, s *suite, sc scale) {
	k := knobsFor(sc)
	k.workers = 2
	k.matDelay = time.Second
	k.lease = 3 * time.Second
	e := setup(t, s, sc, "drainer SIGSTOP past its lease", k, 1)
	topo := e.topos[0]
	e.ld.topo(topo).deckiesOnly = true
	e.a.load = "add_decky/remove_decky of one decky at a time, 1.5/s, materializer delay 1 s, 2 workers, lease 3 s"
	e.a.faults = fmt.Sprintf("%d × SIGSTOP of the lease holder mid-materialize for lease + 3 s, then SIGCONT", sc.pauses)
	e.attach(1)
	stop := e.ld.background(e.ctx, map[string]float64{topo: 1.5})
	for i := 0; i < sc.pauses && e.ctx.Err() == nil; i++ {
		e.pause(2 * time.Second)
		e.pauseDrainer(topo, k.lease+3*time.Second)
	}
	e.pause(4 * time.Second)
	stop()
	e.settle()
	rows, _ := dbMutations(e.ctx, e.d.db, e.topos)
	acc, rej := e.a.auditCalls(e.ctx, e.d.db, e.rdb, topo, rows)
	e.a.notef("materializer calls on the topology: %d accepted, %d rejected by the fence", acc, rej)
	e.finish()
}

// pauseDrainer SIGSTOPs the worker holding topo's drain lease while one of
// its mutations is applying (with the slow materializer, mid-materialize),
// for d, then SIGCONTs it.
func (e *env) pauseDrainer(topo string, d time.Duration) {
	e.t.Helper()
	var victim *proc
	var stuck string
	_, ok := waitFor(e.ctx, e.sc.wait, 20*time.Millisecond, func() bool {
		var owner, mid string
		err := e.d.db.QueryRowContext(e.ctx, `SELECT coalesce(t.drain_owner, ''), coalesce(m.id::text, '')
		  FROM topologies t LEFT JOIN mutations m ON m.topology_id = t.id AND m.state = 'applying'
		  WHERE t.id = $1 LIMIT 1`, topo).Scan(&owner, &mid)
		if err != nil || owner == "" || mid == "" {
			return false
		}
		victim, stuck = e.d.workerByPID(ownerPID(owner)), mid
		return victim != nil
	})
	if !ok {
		e.t.Fatal("no worker was seen holding the drain lease with a mutation applying")
	}
	e.fault(true)
	if err := victim.signal(syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	stopped := time.Now()
	e.pause(d)
	if err := victim.signal(syscall.SIGCONT); err != nil {
		e.t.Fatal(err)
	}
	e.fault(false)
	e.a.notef("SIGSTOPped %s (pid %d) for %s while mutation %s was applying", victim.name, victim.pid(),
		time.Since(stopped).Round(10*time.Millisecond), short(stuck))
}

// scenarioTeardown: a teardown posted while a slow materialize is in flight,
// and workers killed mid-teardown and mid-deploy. Topologies must reach a
// final status, every mutation must end, and no decky may be running in a
// torn-down topology.
func scenarioTeardown(t *testing.T, s *suite, sc scale) {
	k := knobsFor(sc)
	k.workers = 2
	k.matDelay = 2 * time.Second
	e := setup(t, s, sc, "teardown during materialize; worker kill mid-teardown and mid-deploy", k, 2)
	e.a.load = "4 add_decky queued on a topology (materializer delay 2 s), then its teardown; a teardown and a deploy, 2 workers"
	e.a.faults = "teardown while a materialize is in flight; kill -9 of every worker mid-teardown and mid-deploy (restarted at once)"
	e.a.allowFailed = func(reason string) bool { return strings.Contains(reason, "torn down") }
	e.attach(1)
	a, b := e.topos[0], e.topos[1]

	// (a) Teardown while add_decky's Spawn is in flight, more queued behind it.
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("t%d", i)
		e.ld.post(e.ctx, a, "add_decky", name, map[string]any{"name": name, "lan": "dmz"})
	}
	_, ok := waitFor(e.ctx, e.sc.wait, 20*time.Millisecond, func() bool {
		var n int
		err := e.d.db.QueryRowContext(e.ctx, `SELECT count(*) FROM mutations WHERE topology_id = $1 AND state = 'applying'`, a).Scan(&n)
		return err == nil && n > 0
	})
	if !ok {
		t.Fatal("no mutation ever started applying")
	}
	if err := e.api.teardown(e.ctx, a); err != nil {
		t.Fatal(err)
	}
	posted := time.Now()
	e.finalStatus("teardown during materialize", a, posted, "torn_down")

	// (b) Every worker killed mid-teardown.
	if err := e.api.teardown(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	e.killWhen(b, "tearing_down")
	e.finalStatus("teardown after its worker was killed", b, time.Now(), "torn_down", "degraded")

	// (c) Every worker killed mid-deploy.
	c, err := e.api.createBlank(e.ctx, "chaos-deploy")
	if err != nil {
		t.Fatal(err)
	}
	e.topos = append(e.topos, c)
	if err := e.api.deploy(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	e.killWhen(c, "deploying")
	e.finalStatus("deploy after its worker was killed", c, time.Now(), "active", "degraded", "failed")

	for _, id := range []string{a, b} {
		var running []string
		rows, err := e.d.db.QueryContext(e.ctx, `SELECT d.name FROM deckies d JOIN topologies t ON t.id = d.topology_id
		  WHERE t.id = $1 AND t.status = 'torn_down' AND d.state = 'running'`, id)
		if err != nil {
			e.a.failf("deckies of %s: %v", short(id), err)
			continue
		}
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			running = append(running, fmt.Sprintf("decky %s of torn-down topology %s reads running", n, short(id)))
		}
		rows.Close()
		e.a.group(len(running), "deckies running in a torn-down topology", running)
	}
	e.caughtUp("clients saw every mutation end", posted, 0, e.clients)
	rows, _ := dbMutations(e.ctx, e.d.db, e.topos)
	e.a.auditCalls(e.ctx, e.d.db, e.rdb, a, rows)
	e.finish()
}

// killWhen kills every worker once topology id reads status, then restarts
// them.
func (e *env) killWhen(id, status string) {
	e.t.Helper()
	if _, ok := waitFor(e.ctx, e.sc.wait, 20*time.Millisecond, func() bool {
		st, _ := e.api.status(e.ctx, id)
		return st == status
	}); !ok {
		e.t.Fatalf("topology %s never read %s", short(id), status)
	}
	e.fault(true)
	live := e.d.liveWorkers()
	for _, w := range live {
		w.kill()
	}
	for _, w := range live {
		if err := w.start(); err != nil {
			e.t.Fatal(err)
		}
	}
	e.fault(false)
	e.a.notef("killed %d workers while %s read %s", len(live), short(id), status)
}

// finalStatus waits until topology id reads one of want and every mutation
// of it is terminal.
func (e *env) finalStatus(what, id string, from time.Time, want ...string) {
	var last string
	var open int
	took, ok := e.until(e.sc.wait, 100*time.Millisecond, func() bool {
		st, err := e.api.status(e.ctx, id)
		if err != nil {
			return false
		}
		last, open = st, openMutations(e.ctx, e.d.db, []string{id})
		return slices.Contains(want, st) && open == 0
	})
	switch {
	case ok:
		e.a.recovered(what+": "+last, time.Since(from), ok, 0)
	case slices.Contains(want, last):
		e.a.failf("%s: topology %s reached %s but %d of its mutations stayed pending/applying (waited %s)",
			what, short(id), last, open, took.Round(time.Second))
		e.a.figure(fmt.Sprintf("%s: %s with %d mutations open", what, last, open))
	default:
		e.a.failf("%s: topology %s stuck in %q (waited %s; want %s)", what, short(id), last, took.Round(time.Second), strings.Join(want, " or "))
		e.a.figure(fmt.Sprintf("%s: stuck in %s", what, last))
	}
}
