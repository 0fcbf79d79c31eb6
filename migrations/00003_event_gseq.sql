-- +goose Up
-- Durable event identity (SYSTEM §3.6, DOMAIN §10). Every committed outbox
-- event gets a global, gap-free position gseq, assigned by the relay's
-- stamper in (topology_id, seq) order; the SSE id of an event is
-- "<gseq>-<seq>" and never changes, whatever happens to Redis.
ALTER TABLE events ADD COLUMN gseq bigint;
CREATE UNIQUE INDEX events_gseq ON events (gseq);
-- The stamper's work list: committed events without a gseq yet.
CREATE INDEX events_unstamped ON events (topology_id, seq) WHERE gseq IS NULL;

-- One row. gseq: the last position handed out (the stamper locks this row,
-- which serialises stamping and keeps it gap-free). appended_gseq: the
-- sweep's last confirmation that Redis holds every event up to it (pruning
-- never deletes past it). pruned_gseq: the highest gseq ever deleted from the
-- outbox (overview resume is complete only after it).
CREATE TABLE relay_clock (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    gseq          bigint NOT NULL DEFAULT 0,
    appended_gseq bigint NOT NULL DEFAULT 0,
    pruned_gseq   bigint NOT NULL DEFAULT 0
);

-- Existing events keep their order and get positions 1..n. They sat in the
-- old per-topology streams under Redis-generated ids; the new stream starts
-- empty and the relay refills it (within its retention) from the outbox.
WITH o AS (
    SELECT topology_id, seq, row_number() OVER (ORDER BY topology_id, seq) AS g FROM events
)
UPDATE events e SET gseq = o.g FROM o WHERE e.topology_id = o.topology_id AND e.seq = o.seq;
INSERT INTO relay_clock (gseq) SELECT COALESCE(max(gseq), 0) FROM events;

-- Whatever deletes outbox rows (the sweep's prune, a topology deleted with
-- ON DELETE CASCADE) raises pruned_gseq in the same statement, so an
-- overview resume can tell exactly whether anything after its id is gone.
-- +goose StatementBegin
CREATE FUNCTION events_note_pruned() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    top bigint;
BEGIN
    SELECT max(gseq) INTO top FROM gone;
    IF top IS NOT NULL THEN
        UPDATE relay_clock SET pruned_gseq = GREATEST(pruned_gseq, top);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_note_pruned AFTER DELETE ON events
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION events_note_pruned();

-- The per-topology relay watermark is replaced by gseq.
ALTER TABLE topologies DROP COLUMN event_relayed_seq;

-- +goose Down
ALTER TABLE topologies ADD COLUMN event_relayed_seq bigint NOT NULL DEFAULT 0;
UPDATE topologies SET event_relayed_seq = event_seq;
DROP TRIGGER events_note_pruned ON events;
DROP FUNCTION events_note_pruned();
DROP TABLE relay_clock;
DROP INDEX events_unstamped;
DROP INDEX events_gseq;
ALTER TABLE events DROP COLUMN gseq;
