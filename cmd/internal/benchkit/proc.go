package benchkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PprofHookEnv names the variable that makes a binary built by
// scripts/bench-build.sh (with scripts/bench/pprofhook.go overlaid) serve
// net/http/pprof on the given address. Product binaries ignore it.
const PprofHookEnv = "MAZENET_BENCH_PPROF_ADDR"

// pprofHookMsg is the log line the hook prints with its address.
const pprofHookMsg = "bench pprof listening"

// Spec describes a process to start.
type Spec struct {
	Name string   // short name for messages and the log file
	Bin  string   // path of the built binary
	Args []string // arguments
	Env  []string // added to this process's environment
	// LogDir receives <Name>.log with the process's stdout and stderr: the
	// child writes it directly, so logging costs the bench nothing.
	LogDir string
	// Ready is a substring of the log line that says the process is ready.
	Ready string
	// Timeout bounds the wait for Ready (default 30 s).
	Timeout time.Duration
	// Pprof asks the bench pprof hook (if the binary has it) to listen on a
	// free loopback port.
	Pprof bool
	// Janitor, when set, stops the process if the tool is interrupted.
	Janitor *Janitor
}

// Proc is a running process under test.
type Proc struct {
	Name    string
	Pid     int
	LogPath string
	// ReadyLine is the log line that matched Spec.Ready.
	ReadyLine string
	// ProfileBase, when set, is where CPU profiles are fetched
	// (".../debug/pprof/"), with ProfileToken as a bearer token; the pprof
	// hook's address otherwise.
	ProfileBase, ProfileToken string

	cmd     *exec.Cmd
	done    chan struct{}
	release func() // stops the process once, and tells the janitor
}

// Start starts the process and waits until its log shows spec.Ready.
func Start(spec Spec) (*Proc, error) {
	if spec.Timeout == 0 {
		spec.Timeout = 30 * time.Second
	}
	logPath := filepath.Join(spec.LogDir, spec.Name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	if spec.Pprof {
		cmd.Env = append(cmd.Env, PprofHookEnv+"=127.0.0.1:0")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, Pid: cmd.Process.Pid, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	p.release = spec.Janitor.Add(p.terminate)
	deadline := time.Now().Add(spec.Timeout)
	for {
		if line := p.Line(spec.Ready); line != "" {
			p.ReadyLine = line
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start; its log (%s) ends with: %s", spec.Name, logPath, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s not ready after %s; its log (%s) ends with: %s", spec.Name, spec.Timeout, logPath, p.tail())
		}
	}
	if spec.Pprof {
		if line := p.Line(pprofHookMsg); line != "" {
			var rec struct{ Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Addr != "" {
				p.ProfileBase = "http://" + rec.Addr + "/debug/pprof/"
			}
		}
	}
	return p, nil
}

// Line returns the first log line containing substr ("" if none yet).
func (p *Proc) Line(substr string) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			return sc.Text()
		}
	}
	return ""
}

// tail returns the last lines of the log.
func (p *Proc) tail() string {
	b, _ := os.ReadFile(p.LogPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *Proc) Stop() { p.release() }

func (p *Proc) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// CPUProfile saves a CPU profile of d to path, through the process's own
// pprof endpoint or the bench hook; it fails when the process has neither.
func (p *Proc) CPUProfile(d time.Duration, path string) error {
	return p.Profile("profile?seconds="+strconv.Itoa(max(1, int(d.Seconds()))), path)
}

// Profile saves the named pprof profile ("heap", "profile?seconds=5") to path.
func (p *Proc) Profile(name, path string) error {
	if p.ProfileBase == "" {
		return fmt.Errorf("%s: no pprof endpoint (build the binaries with scripts/bench-build.sh)", p.Name)
	}
	req, _ := http.NewRequest(http.MethodGet, p.ProfileBase+name, nil)
	if p.ProfileToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.ProfileToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s profile: %w", p.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s profile: status %d", p.Name, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// Counters are a process's cumulative kernel counters at one moment.
type Counters struct {
	At time.Time
	// CPU is user + system time.
	CPU time.Duration
	// ReadCalls and WriteCalls are read(2)- and write(2)-family system calls
	// (/proc/<pid>/io syscr and syscw; socket writes with write/writev count,
	// sendmsg does not).
	ReadCalls, WriteCalls int64
	// CtxSwitches sums voluntary and involuntary context switches over the
	// process's threads.
	CtxSwitches int64
}

// Sample reads the process's counters now.
func Sample(pid int) Counters {
	c := Counters{At: time.Now(), CPU: CPUTime(pid)}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "syscr: "); ok {
				c.ReadCalls, _ = strconv.ParseInt(v, 10, 64)
			} else if v, ok := strings.CutPrefix(line, "syscw: "); ok {
				c.WriteCalls, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("voluntary_ctxt_switches:")); ok {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				c.CtxSwitches += n
			} else if v, ok := bytes.CutPrefix(line, []byte("nonvoluntary_ctxt_switches:")); ok {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				c.CtxSwitches += n
			}
		}
	}
	return c
}

// Sub returns the change from earlier to c.
func (c Counters) Sub(earlier Counters) Counters {
	return Counters{
		At: c.At, CPU: c.CPU - earlier.CPU,
		ReadCalls: c.ReadCalls - earlier.ReadCalls, WriteCalls: c.WriteCalls - earlier.WriteCalls,
		CtxSwitches: c.CtxSwitches - earlier.CtxSwitches,
	}
}

// CPUTime returns the user+system CPU time of pid.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// RSS returns the resident set of pid in KiB (-1 if unknown).
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

// FreePort returns a loopback TCP port that was free a moment ago, for
// processes that cannot be told to pick their own.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200 or timeout passes.
func WaitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
