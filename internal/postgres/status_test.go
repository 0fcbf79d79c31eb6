package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/dbtest"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// legalTransitions is DOMAIN §3's table, written out independently of the
// domain package so a mistake there fails this test.
var legalTransitions = map[[2]domain.Status]bool{
	{domain.StatusPending, domain.StatusDeploying}:     true,
	{domain.StatusPending, domain.StatusTornDown}:      true,
	{domain.StatusDeploying, domain.StatusActive}:      true,
	{domain.StatusDeploying, domain.StatusFailed}:      true,
	{domain.StatusDeploying, domain.StatusDegraded}:    true,
	{domain.StatusDeploying, domain.StatusTearingDown}: true,
	{domain.StatusActive, domain.StatusDegraded}:       true,
	{domain.StatusActive, domain.StatusTearingDown}:    true,
	{domain.StatusDegraded, domain.StatusActive}:       true,
	{domain.StatusDegraded, domain.StatusTearingDown}:  true,
	{domain.StatusFailed, domain.StatusTearingDown}:    true,
	{domain.StatusTearingDown, domain.StatusTornDown}:  true,
	{domain.StatusTearingDown, domain.StatusDegraded}:  true,
}

// newBlank creates a blank topology named name.
func newBlank(t *testing.T, db *postgres.DB, name string) *domain.Topology {
	t.Helper()
	tp, err := db.CreateBlankTopology(context.Background(), postgres.BlankTopology{Name: name})
	require.NoError(t, err)
	return tp
}

// forceStatus puts a topology in a status directly (test setup only: it
// bypasses the machine and writes no audit or outbox row).
func forceStatus(t *testing.T, db *postgres.DB, id string, s domain.Status) {
	t.Helper()
	_, err := db.Exec(`UPDATE topologies SET status = $2 WHERE id = $1`, id, s)
	require.NoError(t, err)
}

// topologyState is what a transition may change, read straight from the DB.
type topologyState struct {
	Status          domain.Status `db:"status"`
	StatusChangedAt time.Time     `db:"status_changed_at"`
	Version         int           `db:"version"`
	StatusEvents    int           `db:"status_events"`
	OutboxEvents    int           `db:"outbox_events"`
}

func readState(t *testing.T, db *postgres.DB, id string) topologyState {
	t.Helper()
	var s topologyState
	require.NoError(t, db.Get(&s, `SELECT status, status_changed_at, version,
		(SELECT count(*) FROM status_events WHERE topology_id = $1) AS status_events,
		(SELECT count(*) FROM events WHERE topology_id = $1) AS outbox_events
		FROM topologies WHERE id = $1`, id))
	return s
}

func TestStatusMachineAllPairs(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	require.Len(t, domain.Statuses, 7)
	for _, from := range domain.Statuses {
		for _, to := range domain.Statuses {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				t.Parallel()
				tp := newBlank(t, db, "sm-"+string(from)+"-"+string(to))
				forceStatus(t, db, tp.ID, from)
				before := readState(t, db, tp.ID)
				reason := "because " + string(to)

				var ev domain.Event
				err := db.InTx(ctx, func(tx *sqlx.Tx) error {
					var err error
					ev, err = postgres.Transition(ctx, tx, tp.ID, to, &reason)
					return err
				})
				after := readState(t, db, tp.ID)

				if !legalTransitions[[2]domain.Status{from, to}] {
					require.Error(t, err)
					require.Equal(t, domain.EConflict, domain.ErrorCode(err), "illegal transition must be a 409")
					require.Equal(t, before, after, "an illegal transition must write nothing")
					return
				}
				require.NoError(t, err)
				require.Equal(t, to, after.Status)
				require.Equal(t, before.Version, after.Version, "status changes never touch version")
				require.Equal(t, before.StatusEvents+1, after.StatusEvents, "exactly one status_events row")
				require.Equal(t, before.OutboxEvents+1, after.OutboxEvents, "exactly one outbox event")
				require.True(t, after.StatusChangedAt.After(before.StatusChangedAt), "status_changed_at is stamped")

				var row struct {
					From   domain.Status `db:"from_status"`
					To     domain.Status `db:"to_status"`
					Reason *string       `db:"reason"`
				}
				require.NoError(t, db.Get(&row,
					`SELECT from_status, to_status, reason FROM status_events WHERE topology_id = $1`, tp.ID))
				require.Equal(t, from, row.From)
				require.Equal(t, to, row.To)
				require.Equal(t, &reason, row.Reason)

				var outbox struct {
					Seq  int64  `db:"seq"`
					Name string `db:"name"`
					Data []byte `db:"data"`
				}
				require.NoError(t, db.Get(&outbox, `SELECT seq, name, data FROM events WHERE topology_id = $1`, tp.ID))
				require.Equal(t, domain.EventStatus, outbox.Name)
				require.Equal(t, ev.Seq, outbox.Seq, "the returned event is the outbox row")
				var env struct {
					Type    string               `json:"type"`
					Topic   string               `json:"topic"`
					Payload domain.StatusPayload `json:"payload"`
				}
				require.NoError(t, json.Unmarshal(outbox.Data, &env))
				require.Equal(t, "status", env.Type)
				require.Equal(t, "topology."+tp.ID+".status", env.Topic)
				require.Equal(t, to, env.Payload.State, "the payload key is state")
				require.Equal(t, from, env.Payload.From)
				require.Equal(t, &reason, env.Payload.Reason)
			})
		}
	}
}

func TestTransitionUnknownTopology(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	for _, id := range []string{"not-a-uuid", "6f0c1f7e-5d55-4a8f-9d7e-2b8d5c1f0a11"} {
		err := db.InTx(ctx, func(tx *sqlx.Tx) error {
			_, err := postgres.Transition(ctx, tx, id, domain.StatusDeploying, nil)
			return err
		})
		require.Equal(t, domain.ENotFound, domain.ErrorCode(err), id)
	}
}
