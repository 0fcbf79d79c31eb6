package benchkit

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Quantiles summarises one run's latency samples.
type Quantiles struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// QuantilesMicros sorts samples (microseconds) in place and returns their
// quantiles; nearest-rank, so p99 is a real sample.
func QuantilesMicros(samples []int32) Quantiles {
	if len(samples) == 0 {
		return Quantiles{}
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration {
		i := min(len(samples)-1, int(math.Ceil(q*float64(len(samples))))-1)
		return time.Duration(samples[max(i, 0)]) * time.Microsecond
	}
	return Quantiles{N: len(samples), P50: at(.50), P90: at(.90), P99: at(.99), Max: at(1)}
}

// Never is the latency of a delivery that did not happen.
const Never = time.Duration(math.MaxInt64)

// QuantileAll returns the q-quantile of the latencies of expected
// deliveries of which sorted (microseconds, ascending, as QuantilesMicros
// leaves them) happened: the missing ones count as infinitely late, so a
// server cannot look faster by not delivering. Never when more than 1-q of
// the deliveries are missing.
func QuantileAll(sorted []int32, expected int64, q float64) time.Duration {
	if expected <= 0 {
		return 0
	}
	r := int64(math.Ceil(q * float64(expected)))
	if r > int64(len(sorted)) {
		return Never
	}
	return time.Duration(sorted[max(r-1, 0)]) * time.Microsecond
}

// QuantilesOf is QuantilesMicros for durations (sorted in place).
func QuantilesOf(d []time.Duration) Quantiles {
	us := make([]int32, len(d))
	for i, v := range d {
		us[i] = int32(min(v.Microseconds(), math.MaxInt32))
	}
	return QuantilesMicros(us)
}

// String prints the quantiles in milliseconds.
func (q Quantiles) String() string {
	if q.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50 %s p90 %s p99 %s max %s", q.N, Ms(q.P50), Ms(q.P90), Ms(q.P99), Ms(q.Max))
}

// Ms formats a duration in milliseconds with three significant figures.
func Ms(d time.Duration) string {
	if d == Never {
		return "∞"
	}
	return Num(float64(d)/float64(time.Millisecond)) + " ms"
}

// MsOf is d in milliseconds, +Inf for Never.
func MsOf(d time.Duration) float64 {
	if d == Never {
		return math.Inf(1)
	}
	return float64(d) / float64(time.Millisecond)
}

// Num formats a figure with about three significant figures.
func Num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case math.IsInf(v, 1):
		return "∞"
	case a == math.Trunc(a) && a < 1e15:
		return fmt.Sprintf("%.0f", v)
	case a < 1:
		return fmt.Sprintf("%.3f", v)
	case a < 10:
		return fmt.Sprintf("%.2f", v)
	case a < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// Series is one figure measured once per run.
type Series []float64

// Median returns the median (the mean of the middle two for an even count).
func (s Series) Median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Min returns the smallest run's figure.
func (s Series) Min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

// Max returns the largest run's figure.
func (s Series) Max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// Fmt prints "median unit (min–max)", or just the figure for one run.
func (s Series) Fmt(unit string) string {
	if unit != "" && unit != "%" && !strings.HasPrefix(unit, "/") {
		unit = " " + unit
	}
	if len(s) == 1 || s.Min() == s.Max() {
		if math.IsInf(s[0], 0) || math.IsNaN(s[0]) {
			return Num(s[0])
		}
		return Num(s[0]) + unit
	}
	return fmt.Sprintf("%s%s (%s–%s)", Num(s.Median()), unit, Num(s.Min()), Num(s.Max()))
}

// Row is one line of the summary table that cmd/ssebench and cmd/mutbench
// print and append to their -summary file: what was measured, the target,
// mazenet's figure, the peer's figure measured in the same runs, their ratio
// and whether the target is met.
type Row struct {
	Name, Target, Mazenet, Peer, Ratio, Verdict, Load string
}

// SummaryHeader is the markdown table head of Row.
const SummaryHeader = "| Row | Target | mazenet (median of runs, min–max) | Centrifugo / ceiling (same runs) | Ratio | Met | Load avg (1/5/15 min) |\n|---|---|---|---|---|---|---|"

// String renders the row as a markdown table line.
func (r Row) String() string {
	cell := func(s string) string {
		if s == "" {
			return "—"
		}
		return strings.ReplaceAll(s, "|", "/")
	}
	return "| " + strings.Join([]string{cell(r.Name), cell(r.Target), cell(r.Mazenet), cell(r.Peer), cell(r.Ratio), cell(r.Verdict), cell(r.Load)}, " | ") + " |"
}

// Verdict renders a met/not met cell.
func Verdict(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "no"
}

// PrintSummary prints the rows as a markdown table and, when path is set,
// appends them (without the head) to that file, so a script can gather the
// rows of several tools into one table.
func PrintSummary(path string, rows []Row) error {
	fmt.Println()
	fmt.Println(SummaryHeader)
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	fmt.Print(b.String())
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}
