-- +goose Up
-- Fencing of side effects (SYSTEM §3.8). fence is the topology's lease
-- generation: it only grows, and every new holder of the topology's lease
-- takes a higher one (a drainer that takes the drain lease, every deploy
-- start, every teardown start, every sweep that resumes an abandoned deploy
-- or teardown). Each materializer call carries the fence its caller held,
-- and the materializer refuses a call whose fence is below the highest it
-- has seen for the topology, so a worker that lost its lease (paused,
-- partitioned) can change nothing any more.
ALTER TABLE topologies ADD COLUMN fence bigint NOT NULL DEFAULT 0;

-- Deploys and teardowns hold the same lease (drain_owner, drain_until)
-- while they run: the status tells which kind of holder it is (live →
-- drainer; deploying or tearing_down → lifecycle task). lifecycle_attempts
-- counts how many times the current deploy or teardown has been started
-- (1 by the task, +1 per sweep resume after its worker died), so the sweep
-- gives up after a few attempts instead of retrying forever.
ALTER TABLE topologies ADD COLUMN lifecycle_attempts integer NOT NULL DEFAULT 0;

-- The sweep's search for abandoned deploys and teardowns reads the
-- existing topologies_status index.

-- +goose Down
ALTER TABLE topologies DROP COLUMN lifecycle_attempts;
ALTER TABLE topologies DROP COLUMN fence;
