package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/decnet/mazenet/api"
	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/internal/rediskey"
	"github.com/decnet/mazenet/internal/stream"
	"github.com/decnet/mazenet/worker"
)

// system is one run's system under test and the bench's view of it.
type system struct {
	cfg     config
	scratch *benchkit.Scratch
	rdb     *redis.Client
	streams *stream.Streams
	base    string // the API's URL
	token   string // an admin's JWT
	client  *http.Client
	tids    []string
	kinds   []string
	procs   []*benchkit.Proc // process mode: api first, then the workers
	release func()           // runs stop once (and not again on an interrupt)

	stopMu sync.Mutex
	stops  []func() // in order of start

	mu      sync.Mutex
	applied map[string]time.Time // mutation id → its applied (or failed) entry read from the stream
	failed  int                  // how many of those were mutation.failed
	seen    chan struct{}
}

// start builds a fresh schema, starts the API and the workers and seeds
// the topologies.
func start(ctx context.Context, c config, workDir string, run int, j *benchkit.Janitor) (s *system, err error) {
	quiet := slog.New(slog.DiscardHandler)
	s = &system{cfg: c, applied: map[string]time.Time{}, seen: make(chan struct{}, 1), kinds: splitMix(c.mix)}
	s.release = j.Add(s.teardown)
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.scratch, err = benchkit.NewScratch(ctx, c.dbURL, "mutbench_"); err != nil {
		return nil, err
	}
	s.onStop(s.scratch.Close)
	ropt, err := redis.ParseURL(c.redisURL)
	if err != nil {
		return nil, err
	}
	s.rdb = redis.NewClient(ropt)
	prefix, queue := "mutbench:"+benchkit.RandHex(6)+":", "mutbench_"+benchkit.RandHex(6)
	s.onStop(func() {
		benchkit.CleanRedis(s.rdb, queue, prefix+"*", "asynq:{"+queue+"}*")
		s.rdb.Close()
	})
	keys := rediskey.New(prefix)
	s.streams = stream.New(s.rdb, keys)
	secret := benchkit.RandHex(24)
	tokens := auth.NewTokens([]byte(secret), 0)
	env := []string{"DATABASE_URL=" + s.scratch.DSN, "REDIS_URL=" + c.redisURL, "DECNET_REDIS_PREFIX=" + prefix,
		"DECNET_JWT_SECRET=" + secret, "DECNET_QUEUE=" + queue, "DECNET_MATERIALIZER=noop"}
	pprofOn := c.pprofDir != ""

	// API.
	if c.apiBin != "" {
		port, err := benchkit.FreePort()
		if err != nil {
			return nil, err
		}
		p, err := benchkit.Start(benchkit.Spec{Name: fmt.Sprintf("api-run%d", run+1), Bin: c.apiBin, LogDir: workDir,
			Ready: `"api listening"`, Pprof: pprofOn, Env: append(env, "PORT="+strconv.Itoa(port))})
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, p)
		s.onStop(p.Stop)
		s.base = "http://127.0.0.1:" + strconv.Itoa(port)
		if err := benchkit.WaitHTTP(s.base+"/readyz", 15*time.Second); err != nil {
			return nil, err
		}
	} else {
		apiDB, err := postgres.Open(ctx, s.scratch.DSN)
		if err != nil {
			return nil, err
		}
		s.onStop(func() { apiDB.Close() })
		// Wired by api.NewServer as api.Run wires it.
		srv := api.NewServer(api.Config{
			RedisPrefix: prefix, Queue: queue, JWTSecret: []byte(secret), Log: quiet, BcryptCost: bcrypt.MinCost,
		}, apiDB, s.rdb)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		httpSrv := &http.Server{Handler: srv.Handler()}
		go httpSrv.Serve(ln)
		s.onStop(func() { httpSrv.Close() })
		s.base = "http://" + ln.Addr().String()
	}

	// Workers.
	if c.workerBin != "" {
		for i := 0; i < c.workers; i++ {
			p, err := benchkit.Start(benchkit.Spec{Name: fmt.Sprintf("worker%d-run%d", i+1, run+1), Bin: c.workerBin, LogDir: workDir,
				Ready: `"worker started"`, Pprof: pprofOn, Env: env})
			if err != nil {
				return nil, err
			}
			s.procs = append(s.procs, p)
			s.onStop(p.Stop)
		}
	} else if c.workers > 0 {
		workerDB, err := postgres.Open(ctx, s.scratch.DSN)
		if err != nil {
			return nil, err
		}
		s.onStop(func() { workerDB.Close() })
		wctx, cancel := context.WithCancel(context.Background())
		var loops sync.WaitGroup
		s.onStop(func() {
			cancel()
			loops.Wait()
		})
		// Wired by worker.New and served as worker.Run serves them (sharing
		// one pool: one worker process with -workers asynq servers).
		for i := 0; i < c.workers; i++ {
			w := worker.New(worker.Config{
				RedisPrefix: prefix, Queue: queue, Materializer: worker.MaterializerNoop,
				ID: fmt.Sprintf("mutbench-%d", i), Log: quiet,
			}, workerDB, s.rdb)
			loops.Add(1)
			go func() { defer loops.Done(); _ = w.Serve(wctx) }()
		}
	}

	hash, err := auth.HashPassword("mutbench-password", bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	user := &domain.User{Username: "bench", PasswordHash: hash, Role: domain.RoleAdmin}
	if err := s.scratch.DB.CreateUser(ctx, user); err != nil {
		return nil, err
	}
	if s.token, _, err = tokens.Issue(user.UUID); err != nil {
		return nil, err
	}
	s.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	for i := 0; i < c.topologies; i++ {
		tid, err := benchkit.SeedTopologyWith(ctx, s.scratch.DB, i, c.deckies)
		if err != nil {
			return nil, err
		}
		s.tids = append(s.tids, tid)
	}
	tctx, stopTail := context.WithCancel(context.Background())
	tailed := make(chan struct{})
	go func() { defer close(tailed); s.tail(tctx) }()
	s.onStop(func() { stopTail(); <-tailed })
	time.Sleep(200 * time.Millisecond) // the tailer is positioned
	return s, nil
}

// stop tears everything down, last started first.
func (s *system) stop() { s.release() }

func (s *system) teardown() {
	s.stopMu.Lock()
	stops := s.stops
	s.stops = nil
	s.stopMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// onStop registers f to run at stop.
func (s *system) onStop(f func()) {
	s.stopMu.Lock()
	s.stops = append(s.stops, f)
	s.stopMu.Unlock()
}

// tail records when each mutation.applied (or failed) reaches the
// all-topologies stream.
func (s *system) tail(ctx context.Context) {
	last, err := s.streams.LastAllID(ctx)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		es, err := s.streams.ReadAll(ctx, last, time.Second, 1000)
		if err != nil {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		for _, e := range es {
			last = e.ID
			if e.Name != domain.EventApplied && e.Name != domain.EventFailed {
				continue
			}
			if id, ok := mutationID(e.Data); ok {
				s.applied[id] = now
				if e.Name == domain.EventFailed {
					s.failed++
				}
			}
		}
		s.mu.Unlock()
		if len(es) > 0 {
			select {
			case s.seen <- struct{}{}:
			default:
			}
		}
	}
}

// waitApplied waits until every id has reached the stream (or limit) and
// returns how many have not.
func (s *system) waitApplied(ids []string, limit time.Duration) (missing int) {
	deadline := time.Now().Add(limit)
	for {
		s.mu.Lock()
		missing = 0
		for _, id := range ids {
			if _, ok := s.applied[id]; !ok {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		select {
		case <-s.seen:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
