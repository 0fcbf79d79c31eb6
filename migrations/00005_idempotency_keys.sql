-- +goose Up
-- Idempotency-Key (SYSTEM §3.9): the responses of the mutating POSTs a
-- client may retry, keyed per user, route (method and pattern) and key, for
-- 24 hours. request_hash is the SHA-256 of the canonical request (see
-- api/idempotency.go); a retry with the same key and another hash is refused.
-- A row is written in the same statement or transaction as the write it
-- protects (enqueue, blank topology), complete with its response; deploy and
-- teardown, whose write is a task in Redis, first reserve the key (status
-- and body NULL: in flight) and complete it after the task is queued.
--
-- No foreign key to users: every keyed enqueue would take a KEY SHARE lock
-- on its user's row (a multixact under concurrency), and rows of a deleted
-- user are unreachable anyway (user ids are never reused) and pruned with
-- the rest after 24 hours.
CREATE TABLE idempotency_keys (
    user_uuid    uuid NOT NULL,
    route        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    status       integer,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_uuid, route, key),
    CHECK ((status IS NULL) = (body IS NULL))
);
-- The sweep's prune of expired keys. Rows arrive in created_at order, so a
-- BRIN index finds the old ones, and it costs the keyed enqueue less than a
-- second B-tree would (it keeps one summary per range of pages, not one
-- entry per row).
CREATE INDEX idempotency_keys_created_at ON idempotency_keys USING brin (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
