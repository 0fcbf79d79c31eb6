//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
)

// server is a fan-out server under test: mazenet's cmd/sse or Centrifugo.
type server interface {
	name() string
	// open starts a fresh process serving topics topics for n subscribers.
	open(ctx context.Context, n, topics int) error
	proc() *benchkit.Proc
	// addr is the host:port the subscribers dial.
	addr() string
	// request returns subscriber i's raw HTTP request (resuming after lastID
	// where the server supports it).
	request(i int) func(lastID string) string
	// topic returns subscriber i's topic number.
	topic(i int) int
	// topicID is the topology id (or channel) of topic t.
	topicID(t int) string
	// publish publishes ev to topic t.
	publish(ctx context.Context, t int, ev domain.Event) error
	// concurrentPublish reports whether publish calls may overlap. mazenet's
	// relay appends one topology's events in seq order, one call after the
	// other; Centrifugo's HTTP API takes calls in parallel, so its publisher
	// does not wait for one call to return before the next is due.
	concurrentPublish() bool
	// redisConns counts the process's Redis connections (-1: not applicable).
	redisConns() int
	// slowDrops reads the server's own count of dropped slow clients (-1:
	// unknown).
	slowDrops() int
	close()
}

// fanoutHandler records fan-out events: every payload carries bench_seq (the
// event's number within its topic, from 1) and sent_ns (publish call start).
type fanoutHandler struct{}

var (
	snapshotMarker  = []byte("event: snapshot\n")
	centrifugoHello = []byte(`{"connect":`)
	benchSeqKey     = `"bench_seq":`
	benchSentKey    = `"sent_ns":`
	mutationIDKey   = `"mutation_id":"`
	coordsMarkerKey = `"x":`
	eventField      = "event: "
	eventEnqueued   = []byte(domain.EventEnqueued)
	eventApplying   = []byte(domain.EventApplying)
	eventApplied    = []byte(domain.EventApplied)
	eventFailed     = []byte(domain.EventFailed)
)

func (fanoutHandler) frame(c *client, f []byte, now int64) {
	if bytes.Contains(f, snapshotMarker) || bytes.Contains(f, centrifugoHello) {
		c.markReady()
		return
	}
	seq, ok1 := jsonInt(f, benchSeqKey)
	sent, ok2 := jsonInt(f, benchSentKey)
	if !ok1 || !ok2 {
		return // keepalive, ping, retry
	}
	c.record(kindEvent, int(seq), sent, now)
}

// fanResult is one fan-out run of one server.
type fanResult struct {
	server          string
	n, topics       int
	events          int
	expected        int64
	delivered       int64
	lost, dup       int64
	reconnects      int64
	lat             benchkit.Quantiles
	p99All          time.Duration      // p99 over every expected delivery, a lost one counting as never
	publish         benchkit.Quantiles // publish call duration
	publishedIn     time.Duration      // from the first publish call to the last one's return
	self            time.Duration      // CPU time of this tool (subscribers and publisher) over the load
	publishErrors   int                // failed publish calls (Centrifugo only; their events are not expected)
	firstPublishErr string
	connect         time.Duration // time to open every stream
	rssBefore       int64         // KiB
	rssAfter        int64         // KiB
	rssPerConn      float64       // KiB
	redisIdle       int
	redisLoad       int
	drops           int
	load            benchkit.Counters // the server's counters over the load
	loadWall        time.Duration
	syscalls        map[string]int64
	loadAvg         string
	profileErr      string
}

// cpu is the server's CPU use under load, in cores.
func (r *fanResult) cpu() float64 { return r.load.CPU.Seconds() / r.loadWall.Seconds() }

// perFrame divides a count by the frames delivered.
func (r *fanResult) perFrame(v int64) float64 {
	if r.delivered == 0 {
		return 0
	}
	return float64(v) / float64(r.delivered)
}

// benchEvent is the event every server publishes: a mutation.enqueued
// envelope of realistic size whose payload carries the topic's event number
// and the publish call's start time.
func benchEvent(tid string, seq int64, sent int64) (domain.Event, error) {
	ev, err := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{
		"mutation_id": uuid.NewString(), "op": "add_lan", "payload": map[string]any{"name": "lan-" + strconv.FormatInt(seq, 10)},
		"bench_seq": seq, "sent_ns": sent,
	}, time.Unix(0, sent))
	ev.Seq = seq
	return ev, err
}

// fanout runs one fan-out scenario against one server.
func (b *bench) fanout(ctx context.Context, run int, s scenario, who string) (*fanResult, error) {
	var srv server
	if who == "centrifugo" {
		srv = &centrifugoServer{b: b}
	} else {
		srv = &mazenetServer{b: b}
	}
	res := &fanResult{server: who, n: s.n, topics: s.topics, loadAvg: benchkit.LoadAvg()}
	fmt.Printf("\n== run %d: %s, %s — %d subscribers on %d topic(s), %.0f events/s for %s (load average %s) ==\n",
		run+1, s, who, s.n, s.topics, b.o.rate, b.o.duration, res.loadAvg)
	if err := srv.open(ctx, s.n, s.topics); err != nil {
		return nil, err
	}
	defer srv.close()
	p := srv.proc()
	time.Sleep(b.o.settle)
	res.rssBefore = benchkit.RSS(p.Pid)

	start := time.Now()
	subs, err := connectAll(s.n, func(i int) *client {
		return &client{addr: srv.addr(), request: srv.request(i), h: fanoutHandler{}, slot: srv.topic(i)}
	})
	if err != nil {
		return nil, err
	}
	defer subs.close()
	res.connect = time.Since(start)
	time.Sleep(b.o.settle)
	res.rssAfter = benchkit.RSS(p.Pid)
	res.rssPerConn = float64(res.rssAfter-res.rssBefore) / float64(s.n)
	res.redisIdle = srv.redisConns()
	fmt.Printf("connected %d subscribers in %s; RSS %d → %d KiB: %.1f KiB per idle stream; Redis connections %d\n",
		s.n, res.connect.Round(time.Millisecond), res.rssBefore, res.rssAfter, res.rssPerConn, res.redisIdle)
	tag := fmt.Sprintf("%s-%dx%d-run%d", who, s.n, s.topics, run+1)
	if b.o.pprofDir != "" && who == "mazenet" {
		for _, prof := range []string{"heap", "goroutine"} {
			if err := p.Profile(prof, filepath.Join(b.o.pprofDir, prof+"-"+tag+".pprof")); err != nil {
				fmt.Println("profile:", err)
			}
		}
	}

	// Load.
	total := int(b.o.rate * b.o.duration.Seconds())
	lctx, stopLoad := context.WithCancel(ctx)
	var maxRedis atomic.Int64
	maxRedis.Store(int64(res.redisIdle))
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if c := int64(srv.redisConns()); c > maxRedis.Load() {
					maxRedis.Store(c)
				}
			}
		}
	}()
	profDone := make(chan error, 1)
	if b.o.pprofDir != "" {
		go func() {
			profDone <- p.CPUProfile(b.o.duration-time.Second, filepath.Join(b.o.pprofDir, "cpu-"+tag+".pprof"))
		}()
	} else {
		profDone <- nil
	}
	stopSelf := b.startCPUProfile("ssebench-cpu-" + tag + ".pprof")
	var sc *benchkit.SyscallCount
	if b.o.syscalls {
		if sc, err = benchkit.CountSyscalls(p.Pid); err != nil {
			fmt.Println("syscalls:", err)
		}
	}
	c0, self0 := benchkit.Sample(p.Pid), benchkit.CPUTime(os.Getpid())
	perTopic := make([]int64, s.topics)
	pubLat := make([]time.Duration, 0, total)
	failed := make([]bitset, s.topics) // events whose publish call failed, by topic
	var pubMu sync.Mutex
	var pubErr atomic.Value
	var pubs sync.WaitGroup
	inFlight := make(chan struct{}, maxPublishesInFlight)
	publishOne := func(t int, seq int64) {
		t0 := time.Now()
		ev, err := benchEvent(srv.topicID(t), seq, t0.UnixNano())
		if err == nil {
			err = srv.publish(ctx, t, ev)
		}
		d := time.Since(t0)
		pubMu.Lock()
		defer pubMu.Unlock()
		if err != nil {
			if !srv.concurrentPublish() {
				pubErr.CompareAndSwap(nil, err) // a gap in an ordered stream: stop
				return
			}
			// The event will not come: it is not expected, and the failure
			// is reported.
			res.publishErrors++
			if res.firstPublishErr == "" {
				res.firstPublishErr = err.Error()
			}
			failed[t].set(int(seq))
			return
		}
		pubLat = append(pubLat, d)
	}
	interval := time.Duration(float64(time.Second) / b.o.rate)
	loadStart := time.Now()
	for i := 0; i < total && pubErr.Load() == nil; i++ {
		if d := time.Until(loadStart.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		t := i % s.topics
		perTopic[t]++
		if srv.concurrentPublish() {
			inFlight <- struct{}{}
			pubs.Add(1)
			go func(seq int64) {
				defer pubs.Done()
				defer func() { <-inFlight }()
				publishOne(t, seq)
			}(perTopic[t])
		} else {
			publishOne(t, perTopic[t])
		}
	}
	pubs.Wait()
	res.publishedIn = time.Since(loadStart)
	if err, _ := pubErr.Load().(error); err != nil {
		stopLoad()
		stopSelf()
		return nil, fmt.Errorf("publish: %w", err)
	}
	res.events = total
	for t := range perTopic {
		perTopic[t] -= int64(failed[t].count(1, int(perTopic[t])+1))
	}
	for _, c := range subs.clients {
		res.expected += perTopic[c.slot]
	}
	subs.waitFor(res.expected, b.o.drain)
	res.load = benchkit.Sample(p.Pid).Sub(c0)
	res.self = benchkit.CPUTime(os.Getpid()) - self0
	res.loadWall = time.Since(loadStart)
	if sc != nil {
		res.syscalls = sc.Stop()
	}
	stopSelf()
	if err := <-profDone; err != nil {
		res.profileErr = err.Error()
	}
	stopLoad()
	<-sampled
	subs.close()
	res.redisLoad = int(maxRedis.Load())
	res.drops = srv.slowDrops()
	res.publish = benchkit.QuantilesOf(pubLat)

	var lat []int32
	for _, c := range subs.clients {
		c.mu.Lock()
		lat = append(lat, c.lat[kindEvent]...)
		got := int64(c.seen[kindEvent].count(1, len(c.seen[kindEvent])*64))
		res.delivered += got
		res.lost += perTopic[c.slot] - got
		res.dup += c.dup
		res.reconnects += c.reconnects
		c.mu.Unlock()
	}
	res.lat = benchkit.QuantilesMicros(lat)
	res.p99All = benchkit.QuantileAll(lat, res.expected, .99)
	fmt.Printf("events %d published in %s, deliveries %d of %d, lost %d (after a %s drain), duplicates %d, reconnects %d, slow drops %d\n",
		total, res.publishedIn.Round(time.Millisecond), res.delivered, res.expected, res.lost, b.o.drain, res.dup, res.reconnects, res.drops)
	if res.publishErrors > 0 {
		fmt.Printf("%d publish calls failed (not expected), the first: %s\n", res.publishErrors, res.firstPublishErr)
	}
	fmt.Printf("latency of the deliveries %s; p99 counting lost ones as never %s; publish call %s\n", res.lat, benchkit.Ms(res.p99All), res.publish)
	fmt.Printf("%s under load: CPU %.0f%% of a core, %.1f µs CPU, %.2f write calls, %.2f read calls, %.2f context switches per frame delivered; Redis connections ≤ %d\n",
		who, res.cpu()*100, res.perFrame(res.load.CPU.Microseconds()), res.perFrame(res.load.WriteCalls), res.perFrame(res.load.ReadCalls),
		res.perFrame(res.load.CtxSwitches), res.redisLoad)
	fmt.Printf("this tool (subscribers and publisher): CPU %.0f%% of a core\n", 100*res.self.Seconds()/res.loadWall.Seconds())
	if len(res.syscalls) > 0 {
		fmt.Printf("system calls per frame (perf): %s\n", syscallsPerFrame(res))
	}
	if res.profileErr != "" {
		fmt.Println("profile:", res.profileErr)
	}
	return res, nil
}

// syscallsPerFrame renders the perf counts per delivered frame.
func syscallsPerFrame(r *fanResult) string {
	var b bytes.Buffer
	for _, name := range benchkit.SyscallNames {
		if v, ok := r.syscalls[name]; ok {
			fmt.Fprintf(&b, "%s %.2f, ", name, r.perFrame(v))
		}
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte(", ")))
}
