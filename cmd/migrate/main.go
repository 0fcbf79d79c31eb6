// Command migrate is the `release` step: it creates the database when asked
// (-create-db, for `make run` on a fresh machine), applies the embedded goose
// migrations and seeds the admin user (DECNET_ADMIN_USER / DECNET_ADMIN_PASSWORD).
// It is safe to run any number of times.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/migrations"
	"github.com/decnet/mazenet/tasks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func run() error {
	createDB := flag.Bool("create-db", false, "create the database named in DATABASE_URL if it does not exist")
	demo := flag.Bool("demo", false, "seed the demo topology and queue its deploy (make run)")
	flag.Parse()
	env := config.New(os.Getenv)
	log := config.NewLogger(os.Stderr, env.LogLevel())
	dsn := env.DatabaseURL()
	dev := env.Bool("DECNET_DEV", false)
	adminUser := env.String("DECNET_ADMIN_USER", "admin")
	adminPass := env.Get("DECNET_ADMIN_PASSWORD")
	ropt := env.Redis(0)
	queue := env.String("DECNET_QUEUE", tasks.DefaultQueue)
	if err := env.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if *createDB {
		if err := createDatabase(ctx, dsn); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db.DB.DB); err != nil {
		return err
	}
	log.Info("migrations applied")
	if err := seedAdmin(ctx, db, log, dev, adminUser, adminPass); err != nil {
		return err
	}
	if *demo {
		return seedDemo(ctx, db, ropt, queue, log)
	}
	return nil
}

// seedAdmin creates the admin named by DECNET_ADMIN_USER when it is missing.
func seedAdmin(ctx context.Context, db *postgres.DB, log *slog.Logger, dev bool, adminUser, adminPass string) error {
	if adminPass == "" {
		log.Warn("DECNET_ADMIN_PASSWORD not set; no admin seeded")
		return nil
	}
	if len(adminPass) < 12 && !dev {
		return errors.New("config: DECNET_ADMIN_PASSWORD: at least 12 bytes")
	}
	hash, err := auth.HashPassword(adminPass, 0)
	if err != nil {
		return fmt.Errorf("config: DECNET_ADMIN_PASSWORD: %w", err)
	}
	// Production admins must change the seeded password at first login; a
	// developer's `make run` (DECNET_DEV=true) skips that step.
	created, err := db.EnsureAdmin(ctx, adminUser, hash, !dev)
	if err != nil {
		return err
	}
	log.Info("admin user", "username", adminUser, "created", created)
	return nil
}

// createDatabase creates the database of dsn through the server's
// maintenance database, ignoring "already exists".
func createDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Path == "" || u.Path == "/" {
		return errors.New("config: DATABASE_URL: cannot tell the database name")
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name))
	var pe *pq.Error
	if err != nil && !(errors.As(err, &pe) && (pe.Code == "42P04" || pe.Code == "23505")) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
