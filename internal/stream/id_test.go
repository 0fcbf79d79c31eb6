package stream

import "testing"

func TestParseID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ID
		ok   bool
	}{
		{"1-0", ID{1, 0}, true},
		{"1700000000000-12", ID{1700000000000, 12}, true},
		{"0-0", ID{0, 0}, true},
		{"", ID{}, false},
		{"12", ID{}, false},
		{"-1-0", ID{}, false},
		{"1--1", ID{}, false},
		{"+1-0", ID{}, false},
		{"1-+0", ID{}, false},
		{"a-b", ID{}, false},
		{"1-0 ", ID{}, false},
		{" 1-0", ID{}, false},
		{"$", ID{}, false},
		{"9223372036854775807-1", ID{9223372036854775807, 1}, true},
		{"9223372036854775808-1", ID{}, false},
		{"99999999999999999999-0", ID{}, false},
	}
	for _, tc := range tests {
		got, ok := ParseID(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseID(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIDOrderIsNumeric(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b ID
		less bool
	}{
		{ID{9, 1}, ID{10, 1}, true},
		{ID{10, 1}, ID{9, 1}, false},
		{ID{5, 9}, ID{5, 10}, true},
		{ID{5, 1}, ID{5, 1}, false},
		{ID{5, 3}, AfterGSeq(5), true},
		{AfterGSeq(5), ID{6, 1}, true},
	}
	for _, tc := range tests {
		if got := tc.a.Less(tc.b); got != tc.less {
			t.Errorf("%s < %s = %v, want %v", tc.a, tc.b, got, tc.less)
		}
	}
	if got, want := (ID{12, 3}).String(), "12-3"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
