-- +goose Up
-- The materializer calls an op committed (DOMAIN §15), stored in the op's
-- transaction beside committed_at, so a worker that recovers an `applying`
-- row whose changes are already committed can re-run materialisation
-- (idempotent) without re-running the op.
ALTER TABLE mutations ADD COLUMN effects jsonb;

-- The sweep looks for live topologies with open work; the partial index
-- mutations_open already serves the per-topology look-ups.

-- +goose Down
ALTER TABLE mutations DROP COLUMN effects;
