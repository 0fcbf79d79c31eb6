package worker

import (
	"context"

	"github.com/hibiken/asynq"
)

// handleDeploy deploys a pending topology.
func (w *Worker) handleDeploy(ctx context.Context, t *asynq.Task) error { return nil }

// handleTeardown tears a topology down.
func (w *Worker) handleTeardown(ctx context.Context, t *asynq.Task) error { return nil }
