package configtest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/config"
	"github.com/decnet/mazenet/internal/config/configtest"
)

func TestWith(t *testing.T) {
	t.Parallel()
	get := configtest.With(map[string]string{"A": "1", "B": "2"}, "B", "3")
	require.Equal(t, "1", get("A"))
	require.Equal(t, "3", get("B"))
	require.Empty(t, configtest.With(map[string]string{"A": "1"}, "A", "")("A"), `"" unsets`)
}

// parse is a ParseConfig over the shared variables only.
func parse(get func(string) string) (int, error) {
	e := config.New(get)
	e.Redis(0)
	e.LogLevel()
	return e.DBMaxConns(8), e.Err()
}

// The shared bad values are refused by the helpers every process uses.
func TestSharedAreRefused(t *testing.T) {
	t.Parallel()
	configtest.Rejects(t, parse, nil, configtest.Shared)
}
