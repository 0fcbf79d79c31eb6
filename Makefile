# The two commands of the README. Everything else is a convenience.
.PHONY: run test build vet bench

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

build:
	go build -o bin/ ./cmd/...

vet:
	go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./internal/... ./sse/ ./worker/
