// Command worker is the `worker` process: an asynq server that applies
// mutations, deploys and tears down topologies, plus the background loops
// (sweep, event relay, fast wake-ups). Any number may run. Configuration
// comes only from the environment (README.md, Configuration;
// worker.ParseConfig); a bad variable stops the process at start with one
// line naming it. On SIGTERM or SIGINT it finishes in-flight tasks and stops
// (worker.Run).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/decnet/mazenet/worker"
)

func main() {
	cfg, err := worker.ParseConfig(os.Getenv)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err = worker.Run(ctx, cfg)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
