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
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/auth"
	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/postgres"
	"github.com/decnet/mazenet/migrations"
	"github.com/decnet/mazenet/tasks"
)

// timeout bounds the whole release step.
const timeout = 2 * time.Minute

// minAdminPassword is the shortest seeded admin password outside dev mode.
const minAdminPassword = 12

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		ctx, cancel := context.WithTimeout(ctx, timeout)
		err = run(ctx, cfg)
		cancel()
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

// Config is everything the release step reads: its flags and the
// environment.
type Config struct {
	// CreateDB creates the database named in DatabaseURL first (-create-db).
	CreateDB bool
	// Demo seeds the demo topology and queues its deploy (-demo).
	Demo        bool
	DatabaseURL string
	Dev         bool
	// AdminUser and AdminPassword seed the admin; no password, no admin.
	AdminUser     string
	AdminPassword string
	// Redis and Queue are where -demo queues the deploy.
	Redis    *redis.Options
	Queue    string
	LogLevel slog.Level
}

// parseConfig reads the flags in args and the variables through getenv
// (os.Getenv in main). The error names the first bad flag or variable;
// flag.ErrHelp means -h was asked for and the usage printed.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&cfg.CreateDB, "create-db", false, "create the database named in DATABASE_URL if it does not exist")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed the demo topology and queue its deploy (make run)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return cfg, err
	}
	e := config.New(getenv)
	cfg.DatabaseURL = e.DatabaseURL()
	cfg.Dev = e.Bool("DECNET_DEV", false)
	cfg.AdminUser = e.String("DECNET_ADMIN_USER", "admin")
	cfg.AdminPassword = e.Get("DECNET_ADMIN_PASSWORD")
	if cfg.AdminPassword != "" && len(cfg.AdminPassword) < minAdminPassword && !cfg.Dev {
		e.Fail("DECNET_ADMIN_PASSWORD", "at least %d bytes", minAdminPassword)
	}
	cfg.Redis = e.Redis(0)
	cfg.Queue = e.String("DECNET_QUEUE", tasks.DefaultQueue)
	cfg.LogLevel = e.LogLevel()
	return cfg, e.Err()
}

// run is the release step: create the database when asked, apply the
// migrations, seed the admin and, when asked, the demo topology.
func run(ctx context.Context, cfg Config) error {
	log := config.NewLogger(os.Stderr, cfg.LogLevel)
	if cfg.CreateDB {
		if err := createDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db.DB.DB); err != nil {
		return err
	}
	log.Info("migrations applied")
	if err := seedAdmin(ctx, db, log, cfg); err != nil {
		return err
	}
	if cfg.Demo {
		return seedDemo(ctx, db, cfg.Redis, cfg.Queue, log)
	}
	return nil
}

// seedAdmin creates the admin named by DECNET_ADMIN_USER when it is missing.
func seedAdmin(ctx context.Context, db *postgres.DB, log *slog.Logger, cfg Config) error {
	if cfg.AdminPassword == "" {
		log.Warn("DECNET_ADMIN_PASSWORD not set; no admin seeded")
		return nil
	}
	hash, err := auth.HashPassword(cfg.AdminPassword, 0)
	if err != nil {
		return fmt.Errorf("config: DECNET_ADMIN_PASSWORD: %w", err)
	}
	// Production admins must change the seeded password at first login; a
	// developer's `make run` (DECNET_DEV=true) skips that step.
	created, err := db.EnsureAdmin(ctx, cfg.AdminUser, hash, !cfg.Dev)
	if err != nil {
		return err
	}
	log.Info("admin user", "username", cfg.AdminUser, "created", created)
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
