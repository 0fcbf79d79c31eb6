package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/decnet/mazenet/cmd/internal/benchkit"
	"github.com/decnet/mazenet/internal/domain"
	"github.com/decnet/mazenet/internal/postgres"
)

// ceilingResult is one pgbench run of the enqueue statement.
type ceilingResult struct {
	tps      float64
	inserted int64 // mutation rows the run left (a check that it enqueued)
	load     string
}

// findPgbench returns the pgbench to use.
func findPgbench(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench"); len(m) > 0 {
		return m[len(m)-1], nil
	}
	return "", fmt.Errorf("pgbench not found (apt-get install postgresql-client, or -pgbench PATH, or leave ceiling out of -phases)")
}

// ceilingScript is the pgbench script for one topology: the enqueue
// statement with its parameters bound to literals as the API binds them for
// an update_lan without an expected version. A fresh mutation id comes from
// gen_random_uuid() per transaction.
func ceilingScript(tid string) string {
	payload := `{"name":"dmz","x":1}`
	ev, _ := domain.NewEvent(tid, domain.EventEnqueued, map[string]any{
		"mutation_id": uuid.NewString(), "op": domain.OpUpdateLAN, "payload": jsonRaw(payload),
	}, time.Now())
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	args := []string{
		lit(tid), "0", "NULL", "gen_random_uuid()", lit(string(domain.OpUpdateLAN)), lit(payload),
		lit(domain.EventEnqueued), lit(string(ev.Envelope())),
	}
	stmt := postgres.EnqueueSQL
	for i := len(args); i >= 1; i-- {
		stmt = strings.ReplaceAll(stmt, "$"+strconv.Itoa(i), args[i-1])
	}
	return strings.TrimSpace(stmt) + ";\n"
}

type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// ceiling runs pgbench with -clients clients for -duration: every
// transaction is one enqueue statement on one of -topologies topologies
// (one script per topology, picked at random), against its own scratch
// schema.
func ceiling(ctx context.Context, c config, pgbench, workDir string, j *benchkit.Janitor) (*ceilingResult, error) {
	res := &ceilingResult{load: benchkit.LoadAvg()}
	sc, err := benchkit.NewScratch(ctx, c.dbURL, "mutceil_")
	if err != nil {
		return nil, err
	}
	defer j.Add(sc.Close)()
	args := []string{"-n", "-c", strconv.Itoa(c.clients), "-j", "2", "-T", strconv.Itoa(max(1, int(c.duration.Seconds()))),
		"-M", c.pgbenchMode}
	for i := 0; i < c.topologies; i++ {
		tid, err := benchkit.SeedTopology(ctx, sc.DB, i)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(workDir, fmt.Sprintf("enqueue-%02d.sql", i))
		if err := os.WriteFile(path, []byte(ceilingScript(tid)), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-f", path)
	}
	args = append(args, c.dbURL)
	// A shared Postgres may be short of connections for a moment (64 more
	// are needed): try again a few times before giving up.
	var out bytes.Buffer
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, pgbench, args...)
		cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+sc.Schema)
		out.Reset()
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(out.String(), "too many clients") {
			return nil, fmt.Errorf("pgbench: %w\n%s", err, out.String())
		}
		fmt.Printf("  pgbench: Postgres has too few free connections (attempt %d); again in 10 s\n", attempt)
		time.Sleep(10 * time.Second)
	}
	m := tpsLine.FindStringSubmatch(out.String())
	if m == nil {
		return nil, fmt.Errorf("pgbench: no tps in its output:\n%s", out.String())
	}
	res.tps, _ = strconv.ParseFloat(m[1], 64)
	if err := sc.DB.QueryRowContext(ctx, `SELECT count(*) FROM mutations`).Scan(&res.inserted); err != nil {
		return nil, err
	}
	if res.inserted == 0 {
		return nil, fmt.Errorf("pgbench ran but enqueued nothing: the statement matched no topology")
	}
	fmt.Printf("ceiling — pgbench, the exact enqueue statement, %d clients, -M %s, %d topologies, %s (load average %s)\n",
		c.clients, c.pgbenchMode, c.topologies, c.duration, res.load)
	fmt.Printf("  %.0f tps, %d mutations enqueued\n", res.tps, res.inserted)
	return res, nil
}
