package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// env returns a getter over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(nil, env(nil))
	require.NoError(t, err)
	require.False(t, cfg.CreateDB)
	require.False(t, cfg.Demo)
	require.Equal(t, "admin", cfg.AdminUser)
	require.Empty(t, cfg.AdminPassword, "no password: no admin is seeded")
	require.Equal(t, "mazenet", cfg.Queue)

	cfg, err = parseConfig([]string{"-create-db", "-demo"}, env(map[string]string{
		"DECNET_ADMIN_USER": "root", "DECNET_ADMIN_PASSWORD": "twelve bytes", "DECNET_QUEUE": "q1",
	}))
	require.NoError(t, err)
	require.True(t, cfg.CreateDB)
	require.True(t, cfg.Demo)
	require.Equal(t, "root", cfg.AdminUser)
	require.Equal(t, "twelve bytes", cfg.AdminPassword)
	require.Equal(t, "q1", cfg.Queue)

	cfg, err = parseConfig(nil, env(map[string]string{"DECNET_DEV": "true", "DECNET_ADMIN_PASSWORD": "short"}))
	require.NoError(t, err, "a developer's machine may use a short password")
	require.True(t, cfg.Dev)
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		vars map[string]string
		want string
	}{
		{nil, map[string]string{"DECNET_ADMIN_PASSWORD": "eleven byte"}, "config: DECNET_ADMIN_PASSWORD: "},
		{nil, map[string]string{"DECNET_DEV": "yes"}, "config: DECNET_DEV: "},
		{nil, map[string]string{"REDIS_URL": "http://x"}, "config: REDIS_URL: "},
		{nil, map[string]string{"DECNET_LOG_LEVEL": "loud"}, "config: DECNET_LOG_LEVEL: "},
		{[]string{"-seed"}, nil, "flag provided but not defined: -seed"},
	} {
		_, err := parseConfig(tc.args, env(tc.vars))
		require.Error(t, err, "%v %v", tc.args, tc.vars)
		require.True(t, strings.HasPrefix(err.Error(), tc.want), "%v", err)
		require.NotContains(t, err.Error(), "eleven byte", "a password never appears in an error")
	}
	_, err := parseConfig([]string{"-h"}, env(nil))
	require.ErrorIs(t, err, flag.ErrHelp)
}
