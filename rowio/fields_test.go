package rowio

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzNextField checks that walking a line with nextField gives the fields
// bytes.Fields gives, for any bytes, Unicode spaces and invalid UTF-8 included.
func FuzzNextField(f *testing.F) {
	for _, seed := range []string{"", "1 2:1 3:0.5", "  \t1\v2:1\f\r\n", "1\u00a02:1\u0085x", "\xff 1:\xc2", "\u3000a\u2028b"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want := bytes.Fields(line)
		var got [][]byte
		for rest := line; ; {
			var field []byte
			if field, rest = nextField(rest); field == nil {
				break
			}
			got = append(got, field)
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("nextField walk %q, bytes.Fields %q", got, want)
		}
	})
}

func TestSmallUint(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"0007", 7, true}, {"999999999", 999999999, true},
		{"", 0, false}, {"1000000000", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.0", 0, false}, {"1e3", 0, false},
	}
	for _, tc := range tests {
		got, ok := smallUint([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("smallUint(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
