package sse_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBadConfigStopsAtStart runs cmd/sse with one bad variable at a time: it
// must exit 1 with one line naming the variable.
func TestBadConfigStopsAtStart(t *testing.T) {
	t.Parallel()
	good := []string{"PORT=0", "DECNET_JWT_SECRET=" + testSecret,
		"DATABASE_URL=postgres://127.0.0.1:1/none?sslmode=disable", "REDIS_URL=redis://127.0.0.1:1/0"}
	cases := []struct {
		env  string
		name string
	}{
		{"DECNET_SSE_MAX_PER_USER=five", "DECNET_SSE_MAX_PER_USER"},
		{"DECNET_SSE_MAX_PER_USER=0", "DECNET_SSE_MAX_PER_USER"},
		{"DECNET_SSE_MAX_PER_USER=2.5", "DECNET_SSE_MAX_PER_USER"},
		{"DECNET_JWT_SECRET=short", "DECNET_JWT_SECRET"},
		{"DECNET_SSE_KEEPALIVE=soon", "DECNET_SSE_KEEPALIVE"},
		{"DECNET_SSE_SLOT_LEASE=1s", "DECNET_SSE_SLOT_LEASE"},
		{"PORT=http", "PORT"},
		{"REDIS_URL=http://x", "REDIS_URL"},
		{"DECNET_REDIS_TLS_SKIP_VERIFY=maybe", "DECNET_REDIS_TLS_SKIP_VERIFY"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(sseBin)
			cmd.Env = append(append(cleanEnv(), good...), tc.env)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			require.NoError(t, cmd.Start())
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				require.True(t, errors.As(err, &ee), "exit error, got %v", err)
				require.Equal(t, 1, ee.ExitCode())
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("did not stop")
			}
			out := strings.TrimSpace(stderr.String())
			require.Equal(t, 1, strings.Count(out, "\n")+1, "one line: %q", out)
			require.Contains(t, out, tc.name)
		})
	}
}

// cleanEnv is the environment without mazenet's own variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DECNET_") && !strings.HasPrefix(kv, "PORT=") &&
			!strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "REDIS_URL=") {
			out = append(out, kv)
		}
	}
	return out
}
