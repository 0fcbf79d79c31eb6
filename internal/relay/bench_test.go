package relay_test

import (
	"context"
	"testing"
)

// BenchmarkPublish measures what Publish adds after a transition's commit
// (the commit itself is outside the timer): the stamping transaction and the
// Redis append. Compare with the commit's own cost in BenchmarkCommit.
func BenchmarkPublish(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		evs := bd.commit(b, bd.tid, 1)
		b.StartTimer()
		bd.relay.Publish(ctx, evs...)
	}
}

// BenchmarkCommitAndPublishParallel is commit + Publish from 8 goroutines
// per CPU, as busy workers and api processes do: publishers stamp each
// other's events, so stamping transactions are shared.
func BenchmarkCommitAndPublishParallel(b *testing.B) {
	bd := setup(b)
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bd.relay.Publish(ctx, bd.commit(b, bd.tid, 1)...)
		}
	})
}

// BenchmarkCommit is the commit alone, for scale.
func BenchmarkCommit(b *testing.B) {
	bd := setup(b)
	for b.Loop() {
		bd.commit(b, bd.tid, 1)
	}
}
