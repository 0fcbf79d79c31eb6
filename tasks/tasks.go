// Package tasks is the asynq contract between the api and the worker: task
// type names, payloads and constructors, and the coalesced apply wake-up
// (Wakeups) both sides of that contract rely on.
package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task type names.
const (
	// TypeApply drains a topology's pending mutations in seq order.
	TypeApply = "topology:apply"
	// TypeDeploy validates and deploys a pending topology.
	TypeDeploy = "topology:deploy"
	// TypeTeardown tears a topology down.
	TypeTeardown = "topology:teardown"
)

// DefaultQueue is the asynq queue every task goes to in production; tests use
// their own queue name so they never meet a running `make run`.
const DefaultQueue = "mazenet"

// TopologyPayload names the topology a task is about. Tasks carry no state:
// the database is the source of truth, so a duplicated or lost task is harmless.
type TopologyPayload struct {
	TopologyID string `json:"topology_id"`
}

// LifecycleRetries is how many times asynq retries a deploy or teardown
// task that returned an error (with its backoff, over several minutes).
const LifecycleRetries = 5

// New returns a task of type typ for topology tid on queue. Apply tasks are
// only wake-ups and are not retried by asynq: the periodic sweep
// re-dispatches stranded work. Deploy and teardown tasks are retried
// (LifecycleRetries) when they fail before their start commits (the
// database was unreachable), because nothing else would start them; once
// started, a deploy or teardown whose worker dies is resumed by the sweep,
// and a retried task finds its topology no longer pending or teardown-able
// and is skipped.
func New(typ, tid, queue string) *asynq.Task {
	body, _ := json.Marshal(TopologyPayload{TopologyID: tid})
	retries := 0
	if typ == TypeDeploy || typ == TypeTeardown {
		retries = LifecycleRetries
	}
	return asynq.NewTask(typ, body, asynq.Queue(queue), asynq.MaxRetry(retries), asynq.Timeout(5*time.Minute))
}

// Parse decodes a task's payload.
func Parse(t *asynq.Task) (TopologyPayload, error) {
	var p TopologyPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TopologyID == "" {
		return p, fmt.Errorf("tasks: bad %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	return p, nil
}
