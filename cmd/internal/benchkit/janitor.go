package benchkit

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
)

// Janitor undoes what a load tool set up (processes, scratch schemas, Redis
// keys) when the tool is interrupted, so an unattended run stopped half way
// leaves nothing behind. A nil Janitor does nothing.
type Janitor struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// NewJanitor returns a janitor watching SIGINT and SIGTERM: on either it runs
// every registered function, newest first, and exits with status 130.
func NewJanitor() *Janitor {
	j := &Janitor{fns: map[int]func(){}}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\ninterrupted (%s): cleaning up\n", sig)
		j.mu.Lock()
		keys := make([]int, 0, len(j.fns))
		for k := range j.fns {
			keys = append(keys, k)
		}
		fns := j.fns
		j.fns = map[int]func(){}
		j.mu.Unlock()
		sort.Sort(sort.Reverse(sort.IntSlice(keys)))
		for _, k := range keys {
			fns[k]()
		}
		os.Exit(130)
	}()
	return j
}

// Add registers f and returns a function that runs f now (at most once, and
// not again on an interrupt): defer it where f would have been deferred.
func (j *Janitor) Add(f func()) (done func()) {
	var once sync.Once
	run := func() { once.Do(f) }
	if j == nil {
		return run
	}
	j.mu.Lock()
	k := j.next
	j.next++
	j.fns[k] = run
	j.mu.Unlock()
	return func() {
		j.mu.Lock()
		delete(j.fns, k)
		j.mu.Unlock()
		run()
	}
}
