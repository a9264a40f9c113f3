package rowio_test

import (
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kerasgo/kerasgo/rowio"
)

// readAllRows reads r until io.EOF or the first error, copying each row so
// that the reader may reuse its buffers.
func readAllRows(tb testing.TB, r rowio.RowReader) ([]rowio.Row, error) {
	tb.Helper()
	var rows []rowio.Row
	var row rowio.Row
	for {
		err := r.Read(&row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, rowio.Row{
			Line:     row.Line,
			ID:       row.ID,
			Features: append([]float32{}, row.Features...),
		})
	}
}

// checkParseError fails tb unless err is a *ParseError at want's position
// that wraps sentinel. A negative want.Column matches any column.
func checkParseError(tb testing.TB, err error, want *rowio.ParseError, sentinel error) {
	tb.Helper()
	var pe *rowio.ParseError
	if !errors.As(err, &pe) {
		tb.Fatalf("error = %v (%T), want a *rowio.ParseError", err, err)
	}
	if pe.Path != want.Path || pe.Line != want.Line || (want.Column >= 0 && pe.Column != want.Column) || pe.Field != want.Field {
		tb.Errorf("ParseError at {Path:%q Line:%d Column:%d Field:%q}, want {Path:%q Line:%d Column:%d Field:%q} (error: %v)",
			pe.Path, pe.Line, pe.Column, pe.Field, want.Path, want.Line, want.Column, want.Field, err)
	}
	if !errors.Is(err, sentinel) {
		tb.Errorf("errors.Is(%v, %v) = false", err, sentinel)
	}
}

func TestTableReader(t *testing.T) {
	tests := map[string]struct {
		in         string
		opts       rowio.TableOptions
		wantHeader []string
		want       []rowio.Row
	}{
		"header auto detected": {
			in:         "a,b\n1,2\n3,4\n",
			wantHeader: []string{"a", "b"},
			want:       []rowio.Row{{Line: 2, Features: []float32{1, 2}}, {Line: 3, Features: []float32{3, 4}}},
		},
		"header auto absent": {
			in:   "1,2\n3,4\n",
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}, {Line: 2, Features: []float32{3, 4}}},
		},
		"header auto with one non-numeric field": {
			in:         "1,b\n3,4\n",
			wantHeader: []string{"1", "b"},
			want:       []rowio.Row{{Line: 2, Features: []float32{3, 4}}},
		},
		"header present forced on numeric first line": {
			in:         "1,2\n3,4\n",
			opts:       rowio.TableOptions{Header: rowio.HeaderPresent},
			wantHeader: []string{"1", "2"},
			want:       []rowio.Row{{Line: 2, Features: []float32{3, 4}}},
		},
		"header absent forced": {
			in:   "1,2\n3,4\n",
			opts: rowio.TableOptions{Header: rowio.HeaderAbsent},
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}, {Line: 2, Features: []float32{3, 4}}},
		},
		"default id column": {
			in:         "id,a,b\nx,1,2\ny,3,4\n",
			wantHeader: []string{"id", "a", "b"},
			want: []rowio.Row{
				{Line: 2, ID: "x", Features: []float32{1, 2}},
				{Line: 3, ID: "y", Features: []float32{3, 4}},
			},
		},
		"default id column in the middle": {
			in:         "a,id,b\n1,x,2\n",
			wantHeader: []string{"a", "id", "b"},
			want:       []rowio.Row{{Line: 2, ID: "x", Features: []float32{1, 2}}},
		},
		"default id column absent": {
			in:         "a,b\n1,2\n",
			wantHeader: []string{"a", "b"},
			want:       []rowio.Row{{Line: 2, Features: []float32{1, 2}}},
		},
		"named id column": {
			in:         "key,a\nk1,0.5\nk2,-1e3\n",
			opts:       rowio.TableOptions{IDColumn: "key"},
			wantHeader: []string{"key", "a"},
			want: []rowio.Row{
				{Line: 2, ID: "k1", Features: []float32{0.5}},
				{Line: 3, ID: "k2", Features: []float32{-1000}},
			},
		},
		"named id column makes id a feature": {
			in:         "id,key,a\n7,k,1\n",
			opts:       rowio.TableOptions{IDColumn: "key"},
			wantHeader: []string{"id", "key", "a"},
			want:       []rowio.Row{{Line: 2, ID: "k", Features: []float32{7, 1}}},
		},
		"numeric id values": {
			in:         "id,a\n17,1\n",
			wantHeader: []string{"id", "a"},
			want:       []rowio.Row{{Line: 2, ID: "17", Features: []float32{1}}},
		},
		"empty file": {
			in: "",
		},
		"only blank lines": {
			in: "\n\n\r\n",
		},
		"header only": {
			in:         "id,a,b\n",
			wantHeader: []string{"id", "a", "b"},
		},
		"header only without newline": {
			in:         "a,b",
			wantHeader: []string{"a", "b"},
		},
		"no trailing newline": {
			in:   "1,2\n3,4",
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}, {Line: 2, Features: []float32{3, 4}}},
		},
		"blank lines keep line numbers": {
			in:   "1,2\n\n\n3,4\n\n",
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}, {Line: 4, Features: []float32{3, 4}}},
		},
		"CRLF": {
			in:         "id,a,b\r\nx,1,2\r\ny,3,4\r\n",
			wantHeader: []string{"id", "a", "b"},
			want: []rowio.Row{
				{Line: 2, ID: "x", Features: []float32{1, 2}},
				{Line: 3, ID: "y", Features: []float32{3, 4}},
			},
		},
		"UTF-8 BOM before header": {
			in:         "\ufeffid,a\nx,1\n",
			wantHeader: []string{"id", "a"},
			want:       []rowio.Row{{Line: 2, ID: "x", Features: []float32{1}}},
		},
		"UTF-8 BOM before data": {
			in:   "\ufeff1,2\n",
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}},
		},
		"UTF-8 BOM only": {
			in: "\ufeff",
		},
		"TSV": {
			in:         "id\ta\tb\nx\t1\t2.5\n",
			opts:       rowio.TableOptions{Comma: '\t'},
			wantHeader: []string{"id", "a", "b"},
			want:       []rowio.Row{{Line: 2, ID: "x", Features: []float32{1, 2.5}}},
		},
		"TSV commas are not separators": {
			in:         "id\ta\nx,y\t1\n",
			opts:       rowio.TableOptions{Comma: '\t'},
			wantHeader: []string{"id", "a"},
			want:       []rowio.Row{{Line: 2, ID: "x,y", Features: []float32{1}}},
		},
		"spaces around numbers": {
			in:   " 1 , 2\t\n",
			want: []rowio.Row{{Line: 1, Features: []float32{1, 2}}},
		},
		"float32 rounding": {
			in:   "0.1,1e-3,-0\n",
			want: []rowio.Row{{Line: 1, Features: []float32{0.1, 1e-3, 0}}},
		},
		"quoted fields": {
			in:         "\"id\",\"a,b\",c\n\"x, \"\"quoted\"\"\",\"1.5\",2\n",
			wantHeader: []string{"id", "a,b", "c"},
			want:       []rowio.Row{{Line: 2, ID: `x, "quoted"`, Features: []float32{1.5, 2}}},
		},
		"quoted field spanning lines": {
			in:         "id,a\n\"x\ny\",1\nz,2\n",
			wantHeader: []string{"id", "a"},
			want: []rowio.Row{
				{Line: 2, ID: "x\ny", Features: []float32{1}},
				{Line: 4, ID: "z", Features: []float32{2}},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rowio.NewTableReader(strings.NewReader(tc.in), "in.csv", tc.opts)
			got, err := readAllRows(t, r)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %+v, want %+v", got, tc.want)
			}
			if h := r.Header(); !reflect.DeepEqual(h, tc.wantHeader) {
				t.Errorf("Header() = %q, want %q", h, tc.wantHeader)
			}
			var row rowio.Row
			if err := r.Read(&row); err != io.EOF {
				t.Errorf("Read after io.EOF = %v, want io.EOF", err)
			}
		})
	}
}

func TestTableReaderErrors(t *testing.T) {
	tests := map[string]struct {
		in       string
		opts     rowio.TableOptions
		wantRows int // rows read before the error
		want     rowio.ParseError
		sentinel error
	}{
		"named id column missing": {
			in:       "id,a\nx,1\n",
			opts:     rowio.TableOptions{IDColumn: "key"},
			want:     rowio.ParseError{Line: 1, Field: "key"},
			sentinel: rowio.ErrFormat,
		},
		"named id column without header": {
			in:       "1,2\n",
			opts:     rowio.TableOptions{IDColumn: "key"},
			want:     rowio.ParseError{Line: 1, Field: "key"},
			sentinel: rowio.ErrFormat,
		},
		"named id column with header absent": {
			in:       "key,a\n",
			opts:     rowio.TableOptions{Header: rowio.HeaderAbsent, IDColumn: "key"},
			want:     rowio.ParseError{Line: 1, Field: "key"},
			sentinel: rowio.ErrFormat,
		},
		"ragged row too short": {
			in:       "a,b\n1,2\n3\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 3},
			sentinel: rowio.ErrFormat,
		},
		"first row wider than Width": {
			in:       "1,2,3\n4,5\n",
			opts:     rowio.TableOptions{Header: rowio.HeaderAbsent, Width: 2},
			want:     rowio.ParseError{Line: 1},
			sentinel: rowio.ErrFormat,
		},
		"ragged row too long": {
			in:       "1,2\n3,4\n5,6,7\n",
			wantRows: 2,
			want:     rowio.ParseError{Line: 3},
			sentinel: rowio.ErrFormat,
		},
		"ragged row with id column": {
			in:       "id,a,b\nx,1,2\ny,3\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 3},
			sentinel: rowio.ErrFormat,
		},
		"ragged row after blank lines": {
			in:       "1,2\n\n\n3\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 4},
			sentinel: rowio.ErrFormat,
		},
		"non-numeric field with header": {
			in:       "id,a,b\nx,1,2\ny,3,zz\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 3, Column: 3, Field: "b"},
			sentinel: rowio.ErrFormat,
		},
		"non-numeric field without header": {
			in:       "1,2\n3,x\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 2, Column: 2},
			sentinel: rowio.ErrFormat,
		},
		"non-numeric first line with header absent": {
			in:       "a,b\n1,2\n",
			opts:     rowio.TableOptions{Header: rowio.HeaderAbsent},
			want:     rowio.ParseError{Line: 1, Column: 1},
			sentinel: rowio.ErrFormat,
		},
		"empty field": {
			in:       "a,b\n1,\n",
			want:     rowio.ParseError{Line: 2, Column: 2, Field: "b"},
			sentinel: rowio.ErrFormat,
		},
		"float32 overflow": {
			in:       "a\n1e39\n",
			want:     rowio.ParseError{Line: 2, Column: 1, Field: "a"},
			sentinel: rowio.ErrFormat,
		},
		"non-numeric field on CRLF line": {
			in:       "a,b\r\n1,2\r\n3,y\r\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 3, Column: 2, Field: "b"},
			sentinel: rowio.ErrFormat,
		},
		// For syntax errors found by encoding/csv, Column is not checked:
		// it carries encoding/csv's byte column, not a field number.
		"unterminated quote": {
			in:       "a,b\n1,\"2\n",
			want:     rowio.ParseError{Line: 2, Column: -1},
			sentinel: csv.ErrQuote,
		},
		"bare quote": {
			in:       "1,2\n3,4\"5\n",
			wantRows: 1,
			want:     rowio.ParseError{Line: 2, Column: -1},
			sentinel: csv.ErrBareQuote,
		},
		"bare quote in header": {
			in:       "a\"b\n1\n",
			want:     rowio.ParseError{Line: 1, Column: -1},
			sentinel: csv.ErrBareQuote,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := rowio.NewTableReader(strings.NewReader(tc.in), "data/in.csv", tc.opts)
			got, err := readAllRows(t, r)
			if len(got) != tc.wantRows {
				t.Errorf("read %d rows before the error, want %d", len(got), tc.wantRows)
			}
			if err == nil {
				t.Fatalf("Read succeeded, want an error")
			}
			tc.want.Path = "data/in.csv"
			checkParseError(t, err, &tc.want, tc.sentinel)
			if !errors.Is(err, rowio.ErrFormat) {
				t.Errorf("errors.Is(%v, ErrFormat) = false", err)
			}
		})
	}
}

func TestTableReaderErrorNamesFile(t *testing.T) {
	r := rowio.NewTableReader(strings.NewReader("a\nx\n"), "some/dir/features.csv", rowio.TableOptions{})
	err := r.Read(&rowio.Row{})
	if err == nil {
		t.Fatal("Read succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "some/dir/features.csv") {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestTableReaderUnderlyingError(t *testing.T) {
	boom := errors.New("disk on fire")
	tests := map[string]io.Reader{
		"at start":      iotest.ErrReader(boom),
		"after a row":   io.MultiReader(strings.NewReader("a,b\n1,2\n3,"), iotest.ErrReader(boom)),
		"one byte read": iotest.OneByteReader(io.MultiReader(strings.NewReader("\ufeff1"), iotest.ErrReader(boom))),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := readAllRows(t, rowio.NewTableReader(in, "in.csv", rowio.TableOptions{}))
			if !errors.Is(err, boom) {
				t.Errorf("error = %v, want it to wrap %v", err, boom)
			}
		})
	}
}

func TestTableReaderOneByteReads(t *testing.T) {
	// A reader that returns one byte a call must not defeat BOM detection.
	in := iotest.OneByteReader(strings.NewReader("\ufeffid,a\r\nx,1\r\n"))
	r := rowio.NewTableReader(in, "in.csv", rowio.TableOptions{})
	got, err := readAllRows(t, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []rowio.Row{{Line: 2, ID: "x", Features: []float32{1}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows = %+v, want %+v", got, want)
	}
}

func TestTableReaderHugeLine(t *testing.T) {
	const cols = 200_000
	tests := map[string]struct {
		header bool
	}{
		"without header": {header: false},
		"with header":    {header: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			if tc.header {
				b.WriteString("id")
				for j := range cols {
					b.WriteString(",f")
					b.WriteString(strconv.Itoa(j))
				}
				b.WriteString("\n")
			}
			for i := range 3 {
				if tc.header {
					b.WriteString("r" + strconv.Itoa(i) + ",")
				}
				for j := range cols {
					if j > 0 {
						b.WriteByte(',')
					}
					b.WriteString(strconv.Itoa((i + j) % 2))
				}
				b.WriteString("\n")
			}
			r := rowio.NewTableReader(strings.NewReader(b.String()), "wide.csv", rowio.TableOptions{})
			var row rowio.Row
			for i := range 3 {
				if err := r.Read(&row); err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				if len(row.Features) != cols {
					t.Fatalf("row %d has %d features, want %d", i, len(row.Features), cols)
				}
				for j, v := range row.Features {
					if want := float32((i + j) % 2); v != want {
						t.Fatalf("row %d feature %d = %v, want %v", i, j, v, want)
					}
				}
				wantLine := i + 1
				if tc.header {
					wantLine++
					if want := "r" + strconv.Itoa(i); row.ID != want {
						t.Errorf("row %d ID = %q, want %q", i, row.ID, want)
					}
				}
				if row.Line != wantLine {
					t.Errorf("row %d Line = %d, want %d", i, row.Line, wantLine)
				}
			}
			if err := r.Read(&row); err != io.EOF {
				t.Errorf("Read after the last row = %v, want io.EOF", err)
			}
		})
	}
}

func TestTableReaderReusesFeatures(t *testing.T) {
	r := rowio.NewTableReader(strings.NewReader("1,2\n3,4\n"), "in.csv", rowio.TableOptions{})
	row := rowio.Row{Features: make([]float32, 0, 8)}
	if err := r.Read(&row); err != nil {
		t.Fatal(err)
	}
	first := &row.Features[0]
	if err := r.Read(&row); err != nil {
		t.Fatal(err)
	}
	if &row.Features[0] != first {
		t.Error("Read allocated a new Features slice although the old one had room")
	}
	if want := []float32{3, 4}; !reflect.DeepEqual(row.Features, want) {
		t.Errorf("Features = %v, want %v", row.Features, want)
	}
}
