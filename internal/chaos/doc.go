// Package chaos is mazenet's fault suite (SYSTEM §3): it starts its own
// redis-server and PostgreSQL cluster, runs the real api, worker and sse
// binaries against them exactly as in production (configured only by
// environment), drives load through the HTTP API with real SSE clients
// attached, injects infrastructure faults (kill -9 of workers and sse
// processes, Redis restarted empty or from an older snapshot, PostgreSQL
// crash-stopped, a drainer paused past its lease, workers killed mid-deploy
// and mid-teardown) and audits the outcome from PostgreSQL, the documented
// Redis keys and what every client saw.
//
// The suite lives entirely in this package's tests. `go test ./...` runs the
// short version (each scenario once, small counts); `make chaos`
// (MAZENET_CHAOS=full) runs the full one and prints the rows of
// docs/RELIABILITY.md. MAZENET_CHAOS=off or `go test -short` skips it.
//
// The harness talks to the product only over HTTP and SSE, the environment,
// PostgreSQL queries and the Redis keys the spec documents (the per-user SSE
// slot sets and the test materializer's call log), so it keeps working while
// the product's internals change.
package chaos
