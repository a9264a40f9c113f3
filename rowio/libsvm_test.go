package rowio_test

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

func readAllLibSVM(tb testing.TB, input string, opts rowio.LibSVMOptions) ([]rowio.Row, error) {
	tb.Helper()
	r, err := rowio.NewLibSVMReader(strings.NewReader(input), "in.svm", opts)
	if err != nil {
		return nil, err
	}
	var rows []rowio.Row
	for {
		var row rowio.Row
		err := r.Read(&row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

func TestLibSVMReader(t *testing.T) {
	tests := map[string]struct {
		input      string
		opts       rowio.LibSVMOptions
		wantFeats  [][]float32
		wantLabels [][]string
		wantErr    error
		wantLine   int
	}{
		"auto one-based": {input: "1 1:0.5 3:2\n0 2:1\n", opts: rowio.LibSVMOptions{Dim: 3},
			wantFeats: [][]float32{{0.5, 0, 2}, {0, 1, 0}}, wantLabels: [][]string{{"1"}, {"0"}}},
		"auto zero-based": {input: "2 0:1 2:3\n", opts: rowio.LibSVMOptions{Dim: 3},
			wantFeats: [][]float32{{1, 0, 3}}, wantLabels: [][]string{{"2"}}},
		"explicit zero-based": {input: "1 1:1\n", opts: rowio.LibSVMOptions{Dim: 2, Base: rowio.IndexZero},
			wantFeats: [][]float32{{0, 1}}, wantLabels: [][]string{{"1"}}},
		"multi-label, qid, comment, blank line, CRLF": {input: "1,3 qid:7 1:1 # note\r\n\r\n,  2:4\n", opts: rowio.LibSVMOptions{Dim: 2, Base: rowio.IndexOne},
			wantFeats: [][]float32{{1, 0}, {0, 4}}, wantLabels: [][]string{{"1", "3"}, nil}},
		"no features": {input: "4\n", opts: rowio.LibSVMOptions{Dim: 2},
			wantFeats: [][]float32{{0, 0}}, wantLabels: [][]string{{"4"}}},
		"empty": {input: "", opts: rowio.LibSVMOptions{Dim: 2}},
		"BOM, no trailing newline": {input: "\ufeff1 1:1", opts: rowio.LibSVMOptions{Dim: 2, Base: rowio.IndexOne},
			wantFeats: [][]float32{{1, 0}}, wantLabels: [][]string{{"1"}}},
		"huge line": {input: "1" + strings.Repeat(" 1:1", 200000) + "\n", opts: rowio.LibSVMOptions{Dim: 2, Base: rowio.IndexOne},
			wantFeats: [][]float32{{1, 0}}, wantLabels: [][]string{{"1"}}},
		"index too large":   {input: "1 1:1\n1 5:1\n", opts: rowio.LibSVMOptions{Dim: 3, Base: rowio.IndexOne}, wantErr: rowio.ErrFormat, wantLine: 2},
		"index zero in one": {input: "1 0:1\n", opts: rowio.LibSVMOptions{Dim: 3, Base: rowio.IndexOne}, wantErr: rowio.ErrFormat, wantLine: 1},
		"no colon":          {input: "1 3\n", opts: rowio.LibSVMOptions{Dim: 3}, wantErr: rowio.ErrFormat, wantLine: 1},
		"bad value":         {input: "1 1:x\n", opts: rowio.LibSVMOptions{Dim: 3}, wantErr: rowio.ErrFormat, wantLine: 1},
		"bad label":         {input: "cat 1:1\n", opts: rowio.LibSVMOptions{Dim: 3}, wantErr: rowio.ErrFormat, wantLine: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rows, err := readAllLibSVM(t, tc.input, tc.opts)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var pe *rowio.ParseError
				if !errors.As(err, &pe) || pe.Line != tc.wantLine || pe.Path != "in.svm" {
					t.Fatalf("error %v does not name in.svm line %d", err, tc.wantLine)
				}
				return
			}
			if len(rows) != len(tc.wantFeats) {
				t.Fatalf("%d rows, want %d", len(rows), len(tc.wantFeats))
			}
			for i, r := range rows {
				if !slices.Equal(r.Features, tc.wantFeats[i]) || !slices.Equal(r.Labels, tc.wantLabels[i]) {
					t.Errorf("row %d: features %v labels %q, want %v %q", i, r.Features, r.Labels, tc.wantFeats[i], tc.wantLabels[i])
				}
			}
		})
	}
}

func TestLibSVMSparse(t *testing.T) {
	rows, err := readAllLibSVM(t, "1 1:0.5 3:2\n0\n", rowio.LibSVMOptions{Dim: 3, Base: rowio.IndexOne, Sparse: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rows[0].Features) != 0 || !slices.Equal(rows[0].Indices, []int32{0, 2}) ||
		!slices.Equal(rows[0].Values, []float32{0.5, 2}) || len(rows[1].Indices) != 0 {
		t.Fatalf("%+v", rows)
	}
}

func TestLibSVMAutoNeedsSeeker(t *testing.T) {
	_, err := rowio.NewLibSVMReader(io.MultiReader(strings.NewReader("1 1:1\n")), "-", rowio.LibSVMOptions{Dim: 2})
	if err == nil {
		t.Fatal("auto index base on a stream: want an error")
	}
}

// TestLibSVMMatchesCSV reads the testdata features twice, as libsvm and as
// the dense CSV the same Keras vectors were written to, and checks the first
// rows of both against the array NumPy saved from those vectors
// (scripts/make_testdata.py: fortunes_inputs.npy is x_test[:64]).
func TestLibSVMMatchesCSV(t *testing.T) {
	numpy, err := rowio.ReadNPYFile("../testdata/golden/fortunes_inputs.npy")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../testdata/features/fortunes/test.libsvm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sv, err := rowio.NewLibSVMReader(f, f.Name(), rowio.LibSVMOptions{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.Open("../testdata/features/fortunes/test.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := rowio.NewTableReader(c, c.Name(), rowio.TableOptions{})
	var a, b rowio.Row
	n := 0
	for {
		errA, errB := sv.Read(&a), tr.Read(&b)
		if errA == io.EOF && errB == io.EOF {
			break
		}
		if errA != nil || errB != nil {
			t.Fatalf("row %d: libsvm %v, csv %v", n, errA, errB)
		}
		if !slices.Equal(a.Features, b.Features) {
			t.Fatalf("row %d differs between libsvm and csv", n)
		}
		if n < numpy.Rows && !slices.Equal(a.Features, numpy.Row(n)) {
			t.Fatalf("row %d differs from the vectors NumPy saved", n)
		}
		if len(a.Labels) != 1 {
			t.Fatalf("row %d: labels %q, want one class index", n, a.Labels)
		}
		n++
	}
	if n != 1255 {
		t.Fatalf("%d rows, want 1255", n)
	}
}

func FuzzLibSVMReader(f *testing.F) {
	for _, s := range []string{"1 1:0.5 3:2\n", "1,2 qid:3 0:1 # c\n", "", "x", "1 9999999999999:1", "1 1:1e99\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		r, err := rowio.NewLibSVMReader(strings.NewReader(input), "fuzz.svm", rowio.LibSVMOptions{Dim: 8})
		if err != nil {
			t.Fatal(err)
		}
		for range 1000 {
			var row rowio.Row
			err := r.Read(&row)
			if err == io.EOF {
				return
			}
			var pe *rowio.ParseError
			if err != nil {
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ParseError", err)
				}
				return
			}
			if len(row.Features) != 8 {
				t.Fatalf("row of %d features, want 8", len(row.Features))
			}
		}
	})
}

// TestNewFormatReaderOpensNothing: the reader factory reads only the reader
// it is given, never the path (which here does not exist): an *os.File-like
// seeker gets the index base detected, a stream must say it, and the CSV
// header choice reaches the table reader.
func TestNewFormatReaderOpensNothing(t *testing.T) {
	const missing = "/nonexistent/in.svm"
	read := func(r io.Reader, f rowio.Format, opts rowio.ReaderOptions) ([]rowio.Row, error) {
		rr, err := rowio.NewFormatReader(r, missing, f, opts)
		if err != nil {
			return nil, err
		}
		var rows []rowio.Row
		for {
			var row rowio.Row
			if err := rr.Read(&row); err == io.EOF {
				return rows, nil
			} else if err != nil {
				return rows, err
			}
			rows = append(rows, row)
		}
	}
	tests := map[string]struct {
		r       io.Reader
		f       rowio.Format
		opts    rowio.ReaderOptions
		want    [][]float32
		wantErr bool
	}{
		"libsvm, auto on a seeker (one-based)":  {strings.NewReader("1 1:5 3:7\n"), rowio.FormatLibSVM, rowio.ReaderOptions{Dim: 3}, [][]float32{{5, 0, 7}}, false},
		"libsvm, auto on a seeker (zero-based)": {strings.NewReader("1 0:5 2:7\n"), rowio.FormatLibSVM, rowio.ReaderOptions{Dim: 3}, [][]float32{{5, 0, 7}}, false},
		"libsvm, auto on a stream":              {io.MultiReader(strings.NewReader("1 1:5\n")), rowio.FormatLibSVM, rowio.ReaderOptions{Dim: 3}, nil, true},
		"libsvm, a stream said one-based":       {io.MultiReader(strings.NewReader("1 1:5\n")), rowio.FormatLibSVM, rowio.ReaderOptions{Dim: 3, Base: rowio.IndexOne}, [][]float32{{5, 0, 0}}, false},
		"csv, a first line of numbers as data":  {strings.NewReader("1,2\n3,4\n"), rowio.FormatCSV, rowio.ReaderOptions{Dim: 2}, [][]float32{{1, 2}, {3, 4}}, false},
		"csv, told there is a header":           {strings.NewReader("1,2\n3,4\n"), rowio.FormatCSV, rowio.ReaderOptions{Dim: 2, Header: rowio.HeaderPresent}, [][]float32{{3, 4}}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rows, err := read(tc.r, tc.f, tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]float32
			for _, r := range rows {
				got = append(got, r.Features)
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
		})
	}
}
