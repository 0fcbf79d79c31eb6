//go:build benchpprof

// This file belongs to no package on disk. scripts/bench-build.sh compiles
// it into cmd/api, cmd/worker and cmd/sse (go build -tags benchpprof
// -overlay), so the load tools can take CPU profiles of the real processes
// without the product serving pprof. The hook does nothing unless
// MAZENET_BENCH_PPROF_ADDR is set; it then serves net/http/pprof on that
// address (loopback, port 0 for any free port) and logs the address.
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("MAZENET_BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench pprof hook: %v\n", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	fmt.Fprintf(os.Stderr, "{\"msg\":\"bench pprof listening\",\"addr\":%q}\n", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
}
