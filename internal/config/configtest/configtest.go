// Package configtest checks the ParseConfig of api, worker and sse one way:
// a process's test lists the bad values of its own variables and adds the
// shared lists here, for the variables every process parses through the
// same internal/config helpers.
package configtest

import (
	"strings"
	"testing"
)

// Var is one variable (first) set to one value (second).
type Var [2]string

// Shared are bad values of variables every process reads.
var Shared = []Var{
	{"REDIS_URL", "http://x"},
	{"DECNET_REDIS_TLS_SKIP_VERIFY", "maybe"},
	{"DECNET_LOG_LEVEL", "loud"},
	{"DECNET_DB_MAX_CONNS", "0"},
	{"DECNET_DB_MAX_CONNS", "1001"},
	{"DECNET_DB_MAX_CONNS", "many"},
}

// HTTP are bad values of variables the two HTTP processes (api, sse) read.
var HTTP = []Var{
	{"PORT", "http"},
	{"PORT", "-1"},
	{"PORT", "65536"},
	{"DECNET_JWT_SECRET", ""},
	{"DECNET_JWT_SECRET", "short"},
	{"DECNET_DEV", "sometimes"},
}

// With returns a getter over vars in which name reads value instead (""
// unsets it): the environment a test hands a ParseConfig.
func With(vars map[string]string, name, value string) func(string) string {
	return func(k string) string {
		if k == name {
			return value
		}
		return vars[k]
	}
}

// Rejects checks that parse refuses every one of bad, each set alone over
// base, with an error that starts "config: NAME: " (the one line the
// process prints before it stops).
func Rejects[C any](t *testing.T, parse func(func(string) string) (C, error), base map[string]string, bad ...[]Var) {
	t.Helper()
	for _, list := range bad {
		for _, v := range list {
			name, value := v[0], v[1]
			t.Run(name+"="+value, func(t *testing.T) {
				t.Parallel()
				_, err := parse(With(base, name, value))
				if err == nil || !strings.HasPrefix(err.Error(), "config: "+name+": ") {
					t.Errorf("%s=%q: want an error naming %s, got %v", name, value, name, err)
				}
			})
		}
	}
}
