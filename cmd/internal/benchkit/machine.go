// Package benchkit is the machinery shared by mazenet's load tools
// (cmd/ssebench and cmd/mutbench): the machine description printed beside
// every figure, scratch Postgres schemas and Redis prefixes, the processes
// under test (spawned from built binaries, measured through /proc and
// profiled over HTTP), and the statistics every figure is reported with
// (medians of several runs with their spread). It is bench code only; no
// product package imports it.
package benchkit

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine describes the host in one line: CPU count and model, memory and
// kernel, so a table can say where it was measured.
func Machine() string {
	mem := "? GiB RAM"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kib, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				mem = fmt.Sprintf("%.0f GiB RAM", float64(kib)/(1<<20))
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("nproc %d, %s, %s, Linux %s, %s", runtime.NumCPU(), CPUModel(), mem, kernel, runtime.Version())
}

// CPUModel returns the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// LoadAvg returns the 1, 5 and 15-minute load averages as uptime prints
// them. Other work on a shared machine moves every figure, so each run
// records it.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// RaiseFDLimit lifts the soft open-files limit to the hard one (children
// inherit it) and returns the new soft limit. Every subscriber costs one
// descriptor here and one in the server under test.
func RaiseFDLimit() uint64 {
	var l syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return uint64(l.Cur)
}
