package chaos

// Mutation load through the HTTP API. Every op is one whose double
// application fails (add_decky of a unique name, remove_decky of a decky the
// harness added, add_lan of a unique name), so "every accepted mutation
// applied" also proves that none was applied twice.

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// attempt is one POST /mutations and its answer.
type attempt struct {
	Topo   string
	Op     string
	Name   string // the decky or LAN the op names
	MID    string // set on 202
	Status int    // 0 = no answer
	Err    string
	At     time.Time
}

func (a *attempt) String() string {
	return fmt.Sprintf("%s %s on %s posted %s", a.Op, a.Name, short(a.Topo), a.At.Format("15:04:05.000"))
}

// short abbreviates a uuid for messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// topoLoad is the op cycle of one topology.
type topoLoad struct {
	id            string
	k             int
	pendingRemove string
	deckiesOnly   bool
}

// loader posts mutations and remembers every attempt.
type loader struct {
	api *apiClient

	mu       sync.Mutex
	attempts []*attempt
	byMID    map[string]*attempt
	topos    map[string]*topoLoad
}

func newLoader(a *apiClient) *loader {
	return &loader{api: a, byMID: map[string]*attempt{}, topos: map[string]*topoLoad{}}
}

// topo returns the op cycle of a topology.
func (l *loader) topo(id string) *topoLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.topos[id]
	if t == nil {
		t = &topoLoad{id: id}
		l.topos[id] = t
	}
	return t
}

// next posts the next op of topology id: add_decky d<k>, then its
// remove_decky once the add was accepted, and every third op an add_lan
// l<k> (unless deckiesOnly). Only callers serialised per topology may use it.
func (l *loader) next(ctx context.Context, id string) *attempt {
	t := l.topo(id)
	t.k++
	var op, name string
	var payload map[string]any
	switch {
	case t.pendingRemove != "":
		op, name = "remove_decky", t.pendingRemove
		payload = map[string]any{"decky": name}
		t.pendingRemove = ""
	case !t.deckiesOnly && t.k%3 == 0:
		op, name = "add_lan", fmt.Sprintf("l%d", t.k)
		payload = map[string]any{"name": name}
	default:
		op, name = "add_decky", fmt.Sprintf("d%d", t.k)
		payload = map[string]any{"name": name, "lan": "dmz"}
	}
	a := l.post(ctx, id, op, name, payload)
	if a != nil && op == "add_decky" && a.Status == 202 {
		t.pendingRemove = name
	}
	return a
}

// post sends one mutation and records the attempt (nil when ctx ended
// before an answer: the harness cancelled it, it is not an attempt).
func (l *loader) post(ctx context.Context, id, op, name string, payload map[string]any) *attempt {
	a := &attempt{Topo: id, Op: op, Name: name, At: time.Now()}
	mid, st, err := l.api.enqueue(ctx, id, op, payload)
	if ctx.Err() != nil && st == 0 {
		return nil
	}
	a.MID, a.Status = mid, st
	if err != nil {
		a.Err = err.Error()
	}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	if a.MID != "" && st == 202 {
		l.byMID[a.MID] = a
	}
	l.mu.Unlock()
	return a
}

// run posts to each topology at rate mutations per second (each topology
// its own sequential stream, so an add's remove always follows it) until
// stop ends; it returns when every stream stopped. A POST in flight when
// stop ends is sent with ctx and answered: cancelling it would leave a
// mutation that the api may still commit after the scenario measured the
// drain, which the audit would then look for in every client without the
// scenario having waited for it.
func (l *loader) run(ctx, stop context.Context, rates map[string]float64) {
	var wg sync.WaitGroup
	for id, rate := range rates {
		if rate <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			for {
				select {
				case <-stop.Done():
					return
				case <-tick.C:
					if stop.Err() == nil {
						l.next(ctx, id)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// background starts run and returns a stop function that waits for it.
func (l *loader) background(ctx context.Context, rates map[string]float64) (stop func()) {
	stopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, stopCtx, rates)
	}()
	return func() {
		cancel()
		<-done
	}
}

// accepted returns the attempts answered 202.
func (l *loader) accepted() []*attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*attempt
	for _, a := range l.attempts {
		if a.Status == 202 && a.MID != "" {
			out = append(out, a)
		}
	}
	return out
}

// all returns every attempt.
func (l *loader) all() []*attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*attempt(nil), l.attempts...)
}

// uniformRates spreads total mutations/s over the topologies.
func uniformRates(topos []string, total float64) map[string]float64 {
	m := map[string]float64{}
	for _, id := range topos {
		m[id] = total / float64(len(topos))
	}
	return m
}
