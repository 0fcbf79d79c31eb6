// Command api is the `web` process: the REST API under /api/v1, the
// dashboard, /metrics and the asynq monitoring UI. Configuration comes only
// from the environment (README.md, Configuration; api.ParseConfig); a bad
// variable stops the process at start with one line naming it. On SIGTERM
// or SIGINT it drains in-flight requests (api.Run).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/decnet/mazenet/api"
)

func main() {
	cfg, err := api.ParseConfig(os.Getenv)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err = api.Run(ctx, cfg)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
