package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/tasks"
)

// DemoName is the topology `make run` seeds.
const DemoName = "demo"

// seedDemo creates a small valid topology named "demo" — the blank DMZ with
// its gateway, a corp LAN bridged to it by the gateway, and two deckies — and
// asks a worker to deploy it, so the dashboard opens on a live topology. It
// does nothing when a topology of that name exists.
//
// Positions are canvas units; a decky's are relative to its home LAN's box.
// The dashboard draws LANs with a 40-unit header and 16-unit padding and
// deckies 196 units wide, so corp sits right of the DMZ box and its two
// deckies side by side with a 16-unit gap (internal/e2e checks that no
// boxes overlap).
func seedDemo(ctx context.Context, db *postgres.DB, ropt *redis.Options, queue string, log *slog.Logger) error {
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM topologies WHERE name = $1`, DemoName); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if n > 0 {
		log.Info("demo topology already present")
		return nil
	}
	t, err := db.CreateBlankTopology(ctx, postgres.BlankTopology{Name: DemoName})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	corp, _, err := db.CreateLAN(ctx, t.ID, nil, postgres.LANInput{Name: "corp", X: ptr(360), Y: ptr(40)})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	h, err := db.GetHydrated(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var gateway string
	for _, d := range h.Deckies {
		if d.Name == "dmz-gateway" {
			gateway = d.UUID
		}
	}
	if _, _, err := db.CreateEdge(ctx, t.ID, nil, postgres.EdgeInput{DeckyUUID: gateway, LANID: corp.ID}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, d := range []postgres.DeckyInput{
		{Name: "web-01", LAN: "corp", Services: []string{"http", "ssh"}, Archetype: "web-server", X: ptr(16), Y: ptr(56)},
		{Name: "db-01", LAN: "corp", Services: []string{"mysql", "postgres"}, Archetype: "database-server", X: ptr(228), Y: ptr(56)},
	} {
		if _, _, err := db.CreateDecky(ctx, t.ID, nil, d); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.EnqueueContext(ctx, tasks.New(tasks.TypeDeploy, t.ID, queue)); err != nil {
		return fmt.Errorf("demo: enqueue deploy: %w", err)
	}
	log.Info("demo topology created; a worker will deploy it", "topology_id", t.ID, "status", domain.StatusPending)
	return nil
}

func ptr(f float64) *float64 { return &f }
