// Package tasks is the asynq contract between the api and the worker: task
// type names, payloads and constructors, and nothing else.
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

// New returns a task of type typ for topology tid on queue. Wake-up tasks
// are not retried by asynq: the periodic sweep re-dispatches stranded work.
func New(typ, tid, queue string) *asynq.Task {
	body, _ := json.Marshal(TopologyPayload{TopologyID: tid})
	return asynq.NewTask(typ, body, asynq.Queue(queue), asynq.MaxRetry(0), asynq.Timeout(5*time.Minute))
}

// Parse decodes a task's payload.
func Parse(t *asynq.Task) (TopologyPayload, error) {
	var p TopologyPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TopologyID == "" {
		return p, fmt.Errorf("tasks: bad %s payload: %w", t.Type(), asynq.SkipRetry)
	}
	return p, nil
}
