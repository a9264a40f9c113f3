package rowio

import (
	"strings"
	"testing"
)

func TestNewLineScanner(t *testing.T) {
	long := strings.Repeat("x", 1<<17) // past the initial 64 KiB buffer
	tests := map[string]struct {
		in   string
		want []string
	}{
		"empty":                    {in: "", want: nil},
		"no final newline":         {in: "a\nb", want: []string{"a", "b"}},
		"blank lines kept":         {in: "a\n\nb\n", want: []string{"a", "", "b"}},
		"CRLF":                     {in: "a\r\nb\r\n", want: []string{"a", "b"}},
		"byte-order mark skipped":  {in: "\ufeffa\nb\n", want: []string{"a", "b"}},
		"only a leading BOM":       {in: "a\n\ufeffb\n", want: []string{"a", "\ufeffb"}},
		"a line longer than 64KiB": {in: "a\n" + long + "\nb\n", want: []string{"a", long, "b"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newLineScanner(strings.NewReader(tc.in))
			var got []string
			for s.Scan() {
				got = append(got, s.Text())
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d = %.20q (%d bytes), want %.20q (%d bytes)", i+1, got[i], len(got[i]), tc.want[i], len(tc.want[i]))
				}
			}
		})
	}
}
