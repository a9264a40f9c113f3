package rowio_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

// letters is a toy vectorizer: feature i counts the letter 'a'+i (4 features).
type letters struct{}

func (letters) Width() int { return 4 }

func (letters) VectorizeSparse(text string, idx []int32, val []float32) ([]int32, []float32) {
	var counts [4]float32
	for _, r := range text {
		if r >= 'a' && r <= 'd' {
			counts[r-'a']++
		}
	}
	for i, c := range counts {
		if c != 0 {
			idx, val = append(idx, int32(i)), append(val, c)
		}
	}
	return idx, val
}

func TestTextReader(t *testing.T) {
	for _, sparse := range []bool{false, true} {
		r := rowio.NewTextReader(strings.NewReader("\ufeffabba\r\n\ndd c\n"), "docs.txt", letters{}, sparse)
		var got [][]float32
		var lines []int
		for {
			var row rowio.Row
			err := r.Read(&row)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			dense := make([]float32, 4)
			if sparse {
				if len(row.Features) != 0 {
					t.Fatal("sparse row with dense features")
				}
				for k, i := range row.Indices {
					dense[i] = row.Values[k]
				}
			} else {
				copy(dense, row.Features)
			}
			got = append(got, dense)
			lines = append(lines, row.Line)
		}
		want := [][]float32{{2, 2, 0, 0}, {0, 0, 0, 0}, {0, 0, 1, 2}}
		if len(got) != 3 || !slices.Equal(lines, []int{1, 2, 3}) {
			t.Fatalf("sparse=%v: %v at lines %v", sparse, got, lines)
		}
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("sparse=%v: document %d = %v, want %v", sparse, i+1, got[i], want[i])
			}
		}
	}
}

func TestJSONLTextRows(t *testing.T) {
	in := `{"id": "d1", "text": "cab", "label": "x"}` + "\n" + `{"text": 7}` + "\n"
	r, err := rowio.NewJSONLReader(strings.NewReader(in), "docs.jsonl", rowio.JSONLOptions{Dim: 4, Vectorizer: letters{}})
	if err != nil {
		t.Fatal(err)
	}
	var row rowio.Row
	if err := r.Read(&row); err != nil {
		t.Fatal(err)
	}
	if row.ID != "d1" || !slices.Equal(row.Features, []float32{1, 1, 1, 0}) || !slices.Equal(row.Labels, []string{"x"}) {
		t.Fatalf("%+v", row)
	}
	var pe *rowio.ParseError
	if err := r.Read(&row); !errors.As(err, &pe) || pe.Field != "text" || pe.Line != 2 {
		t.Fatalf("non-string text: %v", err)
	}
}
