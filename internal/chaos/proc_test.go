package chaos

// Process helpers: start, signal, kill and wait for child processes; free
// ports; readiness waits; log capture to files whose tails are printed when
// a scenario fails.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process. Restarts reuse the same command line,
// environment and log file (appended, with a marker line per start).
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	dir     string
	cred    *syscall.Credential
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	// deliberate is set when the harness itself stopped the process, so an
	// exit is not reported as a crash.
	deliberate bool
	// crashes records exits the harness did not cause.
	crashes []string
}

// newProc describes a process whose output goes to logDir/<name>.log.
func newProc(name, bin string, args, env []string, logDir string) *proc {
	return &proc{name: name, bin: bin, args: args, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// start launches the process. It dies with the test binary (Pdeathsig), so a
// timed-out test leaves nothing running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("%s: already running", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "----- chaos: start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	p.cmd, p.done, p.exitErr, p.deliberate = cmd, make(chan struct{}), nil, false
	done := p.done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		if !p.deliberate {
			p.crashes = append(p.crashes, fmt.Sprintf("%s (pid %d) exited by itself at %s: %v",
				p.name, cmd.Process.Pid, time.Now().Format("15:04:05.000"), err))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *proc) exitedLocked() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid returns the running process's pid (0 when not started).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

// signal sends sig to the process (not its group: PostgreSQL's children are
// managed by the postmaster itself).
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exitedLocked() {
		return fmt.Errorf("%s: not running", p.name)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGQUIT || sig == syscall.SIGINT {
		p.deliberate = true
	}
	return p.cmd.Process.Signal(sig)
}

// wait waits up to d for the process to exit.
func (p *proc) wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	if p.signal(syscall.SIGKILL) == nil {
		p.wait(30 * time.Second)
	}
}

// stop sends sig (SIGTERM for our binaries), then SIGKILL after grace.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p.signal(sig) != nil {
		return
	}
	if !p.wait(grace) {
		p.kill()
	}
}

// crashed returns the exits the harness did not cause.
func (p *proc) crashed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

// cpuTime returns the process's user+system CPU time from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after ')' are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	const clkTck = 100 // USER_HZ on every Linux ABI Go supports
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every step until it returns true, ctx ends or d passes;
// it returns how long it took and whether cond held.
func waitFor(ctx context.Context, d, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(d)
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), false
		}
		select {
		case <-ctx.Done():
		case <-time.After(step):
		}
	}
}

// waitHTTP waits until GET url answers 200, or the process exits.
func waitHTTP(ctx context.Context, p *proc, url string, d time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	_, ok := waitFor(ctx, d, 100*time.Millisecond, func() bool {
		if !p.running() {
			return true
		}
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !p.running() {
		return fmt.Errorf("%s exited during start-up; log tail:\n%s", p.name, tail(p.logPath, 20))
	}
	if !ok {
		return fmt.Errorf("%s: %s not ready within %s; log tail:\n%s", p.name, url, d, tail(p.logPath, 20))
	}
	return nil
}

// waitLog waits until the process's log, after its latest start marker,
// contains substr.
func waitLog(ctx context.Context, p *proc, substr string, d time.Duration) error {
	_, ok := waitFor(ctx, d, 50*time.Millisecond, func() bool {
		if !p.running() {
			return true
		}
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			return false
		}
		s := string(b)
		if i := strings.LastIndex(s, "----- chaos: start "); i >= 0 {
			s = s[i:]
		}
		return strings.Contains(s, substr)
	})
	if !p.running() {
		return fmt.Errorf("%s exited during start-up; log tail:\n%s", p.name, tail(p.logPath, 20))
	}
	if !ok {
		return fmt.Errorf("%s: %q not logged within %s; log tail:\n%s", p.name, substr, d, tail(p.logPath, 20))
	}
	return nil
}

// tail returns the last n interesting lines of a log: successful request
// lines are skipped and runs of lines that differ only in digits (timestamps,
// ports, ids) are collapsed, so the errors stand out.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	type entry struct {
		line, key string
		times     int
	}
	ring := make([]entry, 0, n)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"msg":"request"`) && !strings.Contains(line, `"status":5`) {
			continue
		}
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		key := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, line)
		if len(ring) > 0 && ring[len(ring)-1].key == key {
			ring[len(ring)-1].times++
			ring[len(ring)-1].line = line
			continue
		}
		if len(ring) == n {
			ring = ring[1:]
		}
		ring = append(ring, entry{line: line, key: key, times: 1})
	}
	var b strings.Builder
	for _, e := range ring {
		b.WriteString("    ")
		if e.times > 1 {
			fmt.Fprintf(&b, "(%d× like) ", e.times)
		}
		b.WriteString(e.line)
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}
