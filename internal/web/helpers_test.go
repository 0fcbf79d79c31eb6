package web_test

import (
	"log/slog"
	"time"
)

// discard is a logger that drops everything.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Condition waits poll every pollEvery; waitBound only stops a broken test
// from hanging until the binary's timeout (nothing is timed).
const (
	waitBound = time.Minute
	pollEvery = 5 * time.Millisecond
)
