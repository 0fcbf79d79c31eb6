package chaos

// The suite's own servers: one redis-server per scenario, one PostgreSQL
// cluster per test binary (a database per scenario), and the product's
// binaries built once.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"
)

// tools are the external programs the suite needs.
type tools struct {
	redisServer string
	pgBin       string // directory holding initdb and postgres
}

// findTools locates redis-server and PostgreSQL's initdb/postgres; the error
// says what is missing (scripts/chaos.sh and scripts/test.sh install them).
func findTools() (tools, error) {
	var t tools
	if p, err := exec.LookPath("redis-server"); err == nil {
		t.redisServer = p
	} else if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		t.redisServer = "/usr/bin/redis-server"
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			t.pgBin = d
			break
		}
	}
	var missing []string
	if t.redisServer == "" {
		missing = append(missing, "redis-server (apt-get install redis-server)")
	}
	if t.pgBin == "" {
		missing = append(missing, "PostgreSQL server binaries /usr/lib/postgresql/*/bin/{initdb,postgres} (apt-get install postgresql)")
	}
	if len(missing) > 0 {
		return t, errors.New("not installed: " + strings.Join(missing, ", "))
	}
	return t, nil
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}

// buildBinaries builds api, worker, sse and migrate (without -race: they
// are the system under test, not the test) into dir/bin.
func buildBinaries(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/api", "./cmd/worker", "./cmd/sse", "./cmd/migrate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return bin, nil
}

// redisServer is one redis-server on a fixed port and data directory, so it
// can be killed and started again "empty" or from an older RDB file.
type redisServer struct {
	port int
	dir  string
	proc *proc
}

// newRedis starts a redis-server on a free port, persisting nothing by
// itself (no save points, no AOF): the only RDB is the one SAVE writes.
func newRedis(ctx context.Context, bin, dir, logDir string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &redisServer{port: port, dir: dir}
	r.proc = newProc("redis", bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--dbfilename", "dump.rdb", "--daemonize", "no", "--protected-mode", "no",
		"--maxclients", "10000",
	}, []string{"PATH=/usr/bin:/bin"}, logDir)
	return r, r.start(ctx)
}

// url is the REDIS_URL of the server.
func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// client returns a new client for the harness's own reads.
func (r *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
}

// start starts the server (loading dump.rdb if there is one) and waits until
// it answers PING.
func (r *redisServer) start(ctx context.Context) error {
	if err := r.proc.start(); err != nil {
		return err
	}
	c := r.client()
	defer c.Close()
	_, ok := waitFor(ctx, 30*time.Second, 20*time.Millisecond, func() bool {
		return r.proc.running() && c.Ping(ctx).Err() == nil
	})
	if !ok {
		return fmt.Errorf("redis-server not ready; log tail:\n%s", tail(r.proc.logPath, 20))
	}
	return nil
}

// killEmpty kills the server with SIGKILL and removes any RDB, so the next
// start is empty.
func (r *redisServer) kill() {
	r.proc.kill()
}

// removeRDB deletes the data file so the next start is empty.
func (r *redisServer) removeRDB() error {
	err := os.Remove(filepath.Join(r.dir, "dump.rdb"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// save runs SAVE and copies the RDB aside as name; restoreRDB puts it back.
func (r *redisServer) save(ctx context.Context, name string) error {
	c := r.client()
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		return fmt.Errorf("redis SAVE: %w", err)
	}
	return copyFile(filepath.Join(r.dir, "dump.rdb"), filepath.Join(r.dir, name))
}

// restoreRDB makes the saved snapshot name the file the next start loads.
func (r *redisServer) restoreRDB(name string) error {
	return copyFile(filepath.Join(r.dir, name), filepath.Join(r.dir, "dump.rdb"))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// pgCluster is the suite's own PostgreSQL cluster. As root it runs as the
// postgres OS user (initdb refuses root).
//
// It runs with fsync=off. That does not weaken the crash test: the fault
// injected is a process crash (immediate shutdown, SIGQUIT), not a machine
// crash, so every WAL record a commit wrote is in the kernel's page cache and
// is replayed by crash recovery on the next start exactly as with fsync=on.
// synchronous_commit stays on, so a commit is acknowledged only after its
// WAL left PostgreSQL's memory.
type pgCluster struct {
	bin  string
	dir  string
	port int
	cred *syscall.Credential
	proc *proc
}

// newPG initdb's a cluster into dir and starts it on a free port.
func newPG(ctx context.Context, binDir, dir, logDir string) (*pgCluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pg := &pgCluster{bin: binDir, dir: dir, port: port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres OS user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "sock")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		if pg.cred != nil {
			if err := os.Chown(d, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + dir}
	initdb := newProc("initdb", filepath.Join(binDir, "initdb"), []string{
		"-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
	}, env, logDir)
	initdb.cred, initdb.dir = pg.cred, dir
	if err := initdb.start(); err != nil {
		return nil, err
	}
	initdb.wait(5 * time.Minute)
	if initdb.exitErr != nil {
		return nil, fmt.Errorf("initdb: %v; log tail:\n%s", initdb.exitErr, tail(initdb.logPath, 20))
	}
	pg.proc = newProc("postgres", filepath.Join(binDir, "postgres"), []string{
		"-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(port), "-k", filepath.Join(dir, "sock"),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=400",
		"-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
	}, env, logDir)
	pg.proc.cred, pg.proc.dir = pg.cred, dir
	return pg, pg.start(ctx)
}

// dsn is the URL of database name.
func (pg *pgCluster) dsn(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

// start starts the postmaster and waits until it accepts queries (after
// crash recovery when the last stop was a crash).
func (pg *pgCluster) start(ctx context.Context) error {
	if err := pg.proc.start(); err != nil {
		return err
	}
	db, err := sql.Open("postgres", pg.dsn("postgres")+"&connect_timeout=2")
	if err != nil {
		return err
	}
	defer db.Close()
	_, ok := waitFor(ctx, 60*time.Second, 50*time.Millisecond, func() bool {
		return pg.proc.running() && db.PingContext(ctx) == nil
	})
	if !ok {
		return fmt.Errorf("postgres not ready; log tail:\n%s", tail(pg.proc.logPath, 20))
	}
	return nil
}

// crashStop is PostgreSQL's immediate shutdown (SIGQUIT to the postmaster,
// what `pg_ctl stop -m immediate` sends): every backend is killed at once,
// nothing is checkpointed, and the next start runs crash recovery.
func (pg *pgCluster) crashStop() {
	if pg.proc.signal(syscall.SIGQUIT) == nil && !pg.proc.wait(30*time.Second) {
		pg.proc.kill()
	}
}

// createDB creates a fresh database.
func (pg *pgCluster) createDB(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", pg.dsn("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE DATABASE `+name)
	return err
}

// suite is what every scenario of one run shares: the tools, the built
// binaries, the PostgreSQL cluster and the report rows.
type suite struct {
	tools tools
	dir   string
	bin   string
	pg    *pgCluster
	n     int
	rows  []string
}

// newSuite finds the tools, builds the binaries and starts the cluster.
// skip is non-empty when the machine cannot run the suite (tools missing).
func newSuite(ctx context.Context) (s *suite, skip string, err error) {
	tl, err := findTools()
	if err != nil {
		return nil, err.Error(), nil
	}
	dir, err := os.MkdirTemp("", "mazenet-chaos-")
	if err != nil {
		return nil, "", err
	}
	s = &suite{tools: tl, dir: dir}
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, "", err
	}
	if s.bin, err = buildBinaries(dir); err != nil {
		return s, "", err
	}
	if s.pg, err = newPG(ctx, tl.pgBin, filepath.Join(dir, "pg"), dir); err != nil {
		return s, "", err
	}
	return s, "", nil
}

// close stops the cluster and removes the suite's directory (kept when
// MAZENET_CHAOS_KEEP is set, for post-mortems).
func (s *suite) close() {
	if s == nil {
		return
	}
	if s.pg != nil && s.pg.proc.running() {
		s.pg.proc.stop(syscall.SIGINT, 30*time.Second) // fast shutdown
	}
	if os.Getenv("MAZENET_CHAOS_KEEP") == "" {
		os.RemoveAll(s.dir)
	} else {
		fmt.Fprintf(os.Stderr, "chaos: kept %s\n", s.dir)
	}
}
