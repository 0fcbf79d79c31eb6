package worker

import (
	"context"

	"github.com/hibiken/asynq"
)

// handleApply drains a topology's pending mutations.
func (w *Worker) handleApply(ctx context.Context, t *asynq.Task) error { return nil }
