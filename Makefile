# The two commands of the README. Everything else is a convenience.
.PHONY: run test build vet bench chaos

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

# The full fault suite (docs/RELIABILITY.md); `make test` runs its short version.
chaos:
	@bash scripts/chaos.sh
