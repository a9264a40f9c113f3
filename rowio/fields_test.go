package rowio

import (
	"bytes"
	"math"
	"slices"
	"strconv"
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

// FuzzPlainEntry holds plainEntry to the standard library: whenever it reads
// a field, that field is the first of bytes.Fields, its index is what
// strconv.Atoi reads before the colon, its value what strconv.ParseFloat
// rounds to float32 after it (bit for bit), and the rest holds the other
// fields. It must also read the common shapes, not fall back on them.
func FuzzPlainEntry(f *testing.F) {
	for _, seed := range []string{"", " 12:3 4:1", "\t7:0.25\r", "3:1e-3 x", "0012:0003", "5:-2.5", "9:16777217",
		"1:12345678", "1:3.4e39", "1:\u00a0", "1:2\u00a0", "qid:3 1:2", "1234567890:1", "1:", ":1", "1:1.2.3", "2:inf",
		"1:0.6170", "1:.5", "1:5.", "1:.", "1:1234.567", "1:0.0000001", "1:9999999.", "1:12345.678", "1:0.1", "1:3.3333333"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		idx, v, rest, ok := plainEntry(line)
		if !ok {
			if !bytes.Equal(rest, line) {
				t.Fatalf("%q: not read, but rest %q", line, rest)
			}
			return
		}
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			t.Fatalf("%q: read %d:%v from no field", line, idx, v)
		}
		name, val, _ := bytes.Cut(fields[0], []byte(":"))
		wantIdx, err := strconv.Atoi(string(name))
		if err != nil || wantIdx != idx {
			t.Fatalf("%q: index %d, strconv.Atoi %d (%v)", line, idx, wantIdx, err)
		}
		want, err := strconv.ParseFloat(string(val), 32)
		if err != nil || math.Float32bits(float32(want)) != math.Float32bits(v) {
			t.Fatalf("%q: value %v, strconv.ParseFloat %v (%v)", line, v, float32(want), err)
		}
		if got := bytes.Fields(rest); !slices.EqualFunc(got, fields[1:], bytes.Equal) {
			t.Fatalf("%q: rest has fields %q, want %q", line, got, fields[1:])
		}
		if end := bytes.Index(line, fields[0]) + len(fields[0]); len(line)-len(rest) != end {
			t.Fatalf("%q: rest starts at %d, the field ends at %d", line, len(line)-len(rest), end)
		}
	})
}

func TestPlainEntryReadsCommonShapes(t *testing.T) {
	for _, field := range []string{"12:3", " 7:0.25", "\t0:1e-3", "9999:12345678", "3:-2.5", "21:1.5439", "8:.5"} {
		if _, _, _, ok := plainEntry([]byte(field + " 1:1")); !ok {
			t.Errorf("%q: not read by the fast path", field)
		}
	}
}
