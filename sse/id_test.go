package sse

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/decnet/mazenet/internal/stream"
)

func TestParseID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want entryID
		ok   bool
	}{
		{"1-0", entryID{1, 0}, true},
		{"1700000000000-12", entryID{1700000000000, 12}, true},
		{"0-0", entryID{0, 0}, true},
		{"", entryID{}, false},
		{"12", entryID{}, false},
		{"-1-0", entryID{}, false},
		{"1--1", entryID{}, false},
		{"+1-0", entryID{}, false},
		{"1-+0", entryID{}, false},
		{"a-b", entryID{}, false},
		{"1-0 ", entryID{}, false},
		{"$", entryID{}, false},
		{"99999999999999999999-0", entryID{}, false},
	}
	for _, tc := range tests {
		got, ok := parseID(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseID(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIDOrderIsNumeric(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		less bool
	}{
		{"9-0", "10-0", true},
		{"10-0", "9-0", false},
		{"5-9", "5-10", true},
		{"5-1", "5-1", false},
	}
	for _, tc := range tests {
		if got := mustParseID(tc.a).less(mustParseID(tc.b)); got != tc.less {
			t.Errorf("%s < %s = %v, want %v", tc.a, tc.b, got, tc.less)
		}
	}
}

func TestTrimmedAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		info  redis.XInfoStream
		after string
		want  bool
	}{
		{"nothing removed", redis.XInfoStream{Length: 3, EntriesAdded: 3, MaxDeletedEntryID: "0-0", FirstEntry: redis.XMessage{ID: "5-0"}}, "1-0", false},
		{"after is retained", redis.XInfoStream{Length: 3, EntriesAdded: 9, MaxDeletedEntryID: "0-0", FirstEntry: redis.XMessage{ID: "5-0"}}, "5-0", false},
		{"after is older than the first retained", redis.XInfoStream{Length: 3, EntriesAdded: 9, MaxDeletedEntryID: "0-0", FirstEntry: redis.XMessage{ID: "5-0"}}, "4-0", true},
		{"deleted above after", redis.XInfoStream{Length: 3, EntriesAdded: 3, MaxDeletedEntryID: "7-0", FirstEntry: redis.XMessage{ID: "5-0"}}, "6-0", true},
		{"emptied", redis.XInfoStream{Length: 0, EntriesAdded: 4, MaxDeletedEntryID: "0-0"}, "6-0", true},
	}
	for _, tc := range tests {
		info := tc.info
		if got := trimmedAfter(&info, mustParseID(tc.after)); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewFrame(t *testing.T) {
	t.Parallel()
	f := newFrame(streamEntry("1-2", "tid", "mutation.applied", `{"a":1}`))
	if got, want := string(f.bytes), "id: 1-2\nevent: mutation.applied\ndata: {\"a\":1}\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	f = newFrame(streamEntry("1-3", "tid", "x\nevent: forged", "a\nb"))
	if got, want := string(f.bytes), "id: 1-3\nevent: xevent: forged\ndata: a\ndata: b\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func streamEntry(id, tid, name, data string) stream.Entry {
	return stream.Entry{ID: id, TopologyID: tid, Name: name, Data: data}
}
