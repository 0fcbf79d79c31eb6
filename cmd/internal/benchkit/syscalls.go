package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SyscallNames are the counts CountSyscalls reports, in display order:
// every system call, then the ones that matter for a socket server.
var SyscallNames = []string{"total", "write", "writev", "read", "epoll_pwait", "futex", "nanosleep", "tgkill"}

// SyscallCount counts a process's system calls with `perf stat` (kernel
// tracepoints, counting mode: a small cost per call, no sampling).
type SyscallCount struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// CountSyscalls starts counting pid's system calls.
func CountSyscalls(pid int) (*SyscallCount, error) {
	args := []string{"stat", "-x", ",", "-p", strconv.Itoa(pid), "-e", "raw_syscalls:sys_enter"}
	for _, n := range SyscallNames[1:] {
		args = append(args, "-e", "syscalls:sys_enter_"+n)
	}
	s := &SyscallCount{cmd: exec.Command("perf", args...)}
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf stat: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // attached
	return s, nil
}

// Stop ends the count and returns it by name (see SyscallNames).
func (s *SyscallCount) Stop() map[string]int64 {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
	out := map[string]int64{}
	for _, line := range strings.Split(s.out.String(), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch ev := f[2]; {
		case ev == "raw_syscalls:sys_enter":
			out["total"] = v
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			out[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = v
		}
	}
	return out
}
