package benchkit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ConnsTo counts pid's established TCP connections whose remote port is
// port (for example its Redis connections): the socket inodes behind the
// process's descriptors, matched against /proc/net/tcp{,6}. It needs no
// cooperation from the process. -1 when /proc cannot be read.
func ConnsTo(pid, port int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	inodes := make(map[string]bool, len(fds))
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[l[len("socket:["):len(l)-1]] = true
		}
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "01" || !strings.HasSuffix(fl[2], want) {
				continue
			}
			if inodes[fl[9]] {
				n++
			}
		}
		f.Close()
	}
	return n
}

// PortOf returns the port of a host:port, or def.
func PortOf(hostport string, def int) int {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		if p, err := strconv.Atoi(hostport[i+1:]); err == nil {
			return p
		}
	}
	return def
}
