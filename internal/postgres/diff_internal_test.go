package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/decnet/mazenet/internal/domain"
)

// deckyEqual is written out field by field for speed; it must agree with
// reflect.DeepEqual (updated_at aside) except that a nil list or map equals
// an empty one, as both are stored the same way.
func TestDeckyEqual(t *testing.T) {
	t.Parallel()
	s := func(v string) *string { return &v }
	f := func(v float64) *float64 { return &v }
	base := func() domain.Decky {
		return domain.Decky{
			UUID: "u", TopologyID: "t", Name: "web", HomeLANID: s("l"), Services: []string{"ssh", "http"},
			Config: map[string]any{"ips_by_lan": map[string]any{"dmz": "10.0.0.2"}, "n": 1.0, "b": true, "l": []any{"x", nil}},
			IP: s("10.0.0.2"), State: "running", LastError: nil, UpdatedAt: time.Unix(1, 0), X: f(1), Y: nil,
		}
	}
	changes := map[string]func(d *domain.Decky){
		"uuid":         func(d *domain.Decky) { d.UUID = "v" },
		"topology":     func(d *domain.Decky) { d.TopologyID = "u" },
		"name":         func(d *domain.Decky) { d.Name = "db" },
		"home":         func(d *domain.Decky) { d.HomeLANID = s("m") },
		"home nil":     func(d *domain.Decky) { d.HomeLANID = nil },
		"services":     func(d *domain.Decky) { d.Services = []string{"http", "ssh"} },
		"ip":           func(d *domain.Decky) { d.IP = s("10.0.0.3") },
		"state":        func(d *domain.Decky) { d.State = "pending" },
		"last error":   func(d *domain.Decky) { d.LastError = s("boom") },
		"x":            func(d *domain.Decky) { d.X = f(2) },
		"y":            func(d *domain.Decky) { d.Y = f(0) },
		"config value": func(d *domain.Decky) { d.Config["ips_by_lan"].(map[string]any)["dmz"] = "10.0.0.3" },
		"config key":   func(d *domain.Decky) { d.Config["m"] = 1.0 },
		"config type":  func(d *domain.Decky) { d.Config["n"] = "1" },
		"config null":  func(d *domain.Decky) { d.Config["l"] = nil },
		"config list":  func(d *domain.Decky) { d.Config["l"] = []any{"x"} },
		"config bool":  func(d *domain.Decky) { d.Config["b"] = false },
	}
	a := base()
	require.True(t, deckyEqual(a, base()))
	b := base()
	b.UpdatedAt = time.Unix(2, 0)
	require.True(t, deckyEqual(a, b), "updated_at is the store's")
	for name, change := range changes {
		b := base()
		change(&b)
		require.False(t, deckyEqual(a, b), name)
		require.False(t, reflect.DeepEqual(a, b), name)
	}
	for _, empty := range []func(d *domain.Decky){
		func(d *domain.Decky) { d.Services, d.Config = nil, nil },
		func(d *domain.Decky) { d.Services, d.Config = []string{}, map[string]any{} },
	} {
		x, y := base(), base()
		x.Services, x.Config = nil, nil
		empty(&y)
		require.True(t, deckyEqual(x, y), "nil and empty are stored alike")
	}
}

func BenchmarkDeckyEqual(b *testing.B) {
	s := "10.0.0.2"
	d := domain.Decky{UUID: "u", Name: "web", Services: []string{"ssh", "http"}, IP: &s,
		Config: map[string]any{"ips_by_lan": map[string]any{"dmz": "10.0.0.2", "lan1": "10.1.0.2"}}}
	e := d
	e.Config = map[string]any{"ips_by_lan": map[string]any{"dmz": "10.0.0.2", "lan1": "10.1.0.2"}}
	e.Services = []string{"ssh", "http"}
	b.Run("fields", func(b *testing.B) {
		for b.Loop() {
			_ = deckyEqual(d, e)
		}
	})
	b.Run("reflect", func(b *testing.B) {
		for b.Loop() {
			_ = reflect.DeepEqual(d, e)
		}
	})
}
