// Command sse is the `sse` process: the SSE fan-out for
// GET /api/v1/topologies/{id}/events and GET /api/v1/stream (DOMAIN §10,
// SYSTEM §4). Configuration comes only from the environment (README.md,
// Configuration; sse.ParseConfig); a bad variable stops the process at start
// with one line naming it. On SIGTERM or SIGINT it drains (sse.Run).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/decnet/mazenet/sse"
)

func main() {
	cfg, err := sse.ParseConfig(os.Getenv)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err = sse.Run(ctx, cfg)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sse:", err)
		os.Exit(1)
	}
}
