package rowio_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

func FuzzTableReader(f *testing.F) {
	seeds := []string{
		"",
		"\ufeff",
		"a,b\n1,2\n3,4\n",
		"1,2\n3,4",
		"id,a,b\r\nx,1,2\r\ny,3,4\r\n",
		"\ufeffid,a\nx,1\n",
		"id\ta\nx\t1\n",
		"key,a\nk,1\n",
		"\"id\",\"a,b\",c\n\"x\ny\",\"1.5\",2\n",
		"a,b\n1,2\n3\n",
		"1,2\n3,x\n",
		"a,b\n1,\"2\n",
		"1,2\n3,4\"5\n",
		"1,2\n\n\n3,4\n\n",
		" 1 , nan, Inf, -0x1p-2\n",
		"id,id\nx,y\n",
		"1e39\n",
		"\r\r\n\"\"\n,",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i%3), i%4 == 2, []string{"", "key", "id"}[i%3])
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, tsv bool, idColumn string) {
		opts := rowio.TableOptions{Header: rowio.HeaderMode(mode % 3), IDColumn: idColumn}
		if tsv {
			opts.Comma = '\t'
		}
		const path = "fuzz.csv"
		r := rowio.NewTableReader(bytes.NewReader(data), path, opts)
		maxLines := bytes.Count(data, []byte{'\n'}) + 1
		width, lastLine := -1, 0
		var row rowio.Row
		for {
			err := r.Read(&row)
			if err == io.EOF {
				if err := r.Read(&row); err != io.EOF {
					t.Fatalf("Read after io.EOF = %v", err)
				}
				break
			}
			if err != nil {
				var pe *rowio.ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T) is not a *ParseError", err, err)
				}
				if pe.Path != path || pe.Line < 1 || pe.Line > maxLines || pe.Column < 0 {
					t.Fatalf("ParseError %+v: bad position for %d lines", pe, maxLines)
				}
				if !errors.Is(err, rowio.ErrFormat) {
					t.Fatalf("error %v does not wrap ErrFormat", err)
				}
				break
			}
			if width < 0 {
				width = len(row.Features)
			}
			if len(row.Features) != width {
				t.Fatalf("line %d has %d features, an earlier row %d", row.Line, len(row.Features), width)
			}
			if row.Line <= lastLine || row.Line > maxLines {
				t.Fatalf("row at line %d after line %d, input of %d lines", row.Line, lastLine, maxLines)
			}
			lastLine = row.Line

			header := r.Header()
			if opts.Header == rowio.HeaderPresent && header == nil {
				t.Fatal("HeaderPresent but Header() is nil")
			}
			if opts.Header == rowio.HeaderAbsent && header != nil {
				t.Fatalf("HeaderAbsent but Header() = %q", header)
			}
			idName := idColumn
			if idName == "" {
				idName = "id"
			}
			hasID := false
			for _, h := range header {
				if strings.TrimSpace(h) == idName {
					hasID = true
				}
			}
			if header != nil {
				want := len(header)
				if hasID {
					want--
				}
				if width != want {
					t.Fatalf("%d features per row under a header of %d fields %q", width, len(header), header)
				}
			}
			if !hasID && row.ID != "" {
				t.Fatalf("ID %q without an id column", row.ID)
			}
		}
	})
}

func FuzzNPYReader(f *testing.F) {
	valid := npyFile(f, 1, npyDict("<f4", false, 3, 2), npyData(f, "<f4", 1, 2, 3, 4, 5, 6))
	seeds := [][]byte{
		nil,
		[]byte("\x93NUMPY"),
		valid,
		valid[:len(valid)-3],
		valid[:40],
		npyFile(f, 1, npyDict("<f8", false, 4), npyData(f, "<f8", 0.5, -1, 2, 1e300)),
		npyFile(f, 1, npyDict(">f4", false, 1, 2), npyData(f, ">f4", 1.5, -3)),
		npyFile(f, 1, npyDict(">f8", false, 2, 1), npyData(f, ">f8", 1.5, -3)),
		npyFile(f, 2, npyDict("<f4", false, 2, 2), npyData(f, "<f4", 1, 2, 3, 4)),
		npyFile(f, 3, npyDict("<f4", false, 0, 7), nil),
		npyFile(f, 1, npyDict("<i8", false, 1, 2), npyData(f, "<i8", 1, 2)),
		npyFile(f, 1, npyDict("<f4", true, 2, 2), npyData(f, "<f4", 1, 2, 3, 4)),
		npyFile(f, 1, npyDict("<f4", false, 2, 2, 2), nil),
		npyFile(f, 1, npyDict("<f4", false), npyData(f, "<f4", 1)),
		npyFile(f, 1, npyDict("<f4", false, 5, 0), nil),
		npyFile(f, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", npyData(f, "<f4", 8, 9)),
		npyFile(f, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", nil),
		append([]byte("\x93NUMPZ"), valid[6:]...),
	}
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "fortunes_probabilities.npy"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, golden[:128+2*20*4+5])
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.npy"
		n, err := rowio.NewNPYReader(bytes.NewReader(data), path)
		if err != nil {
			var pe *rowio.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Path != path || pe.Line != 0 {
				t.Fatalf("header ParseError %+v: want Path %q, Line 0", pe, path)
			}
			if !errors.Is(err, rowio.ErrFormat) && !errors.Is(err, rowio.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			if _, err2 := rowio.NewNPYRowReader(bytes.NewReader(data), path); err2 == nil {
				t.Fatal("NewNPYRowReader accepted a header NewNPYReader rejects")
			}
			return
		}
		if n.Rows() < 0 || n.Cols() < 0 {
			t.Fatalf("shape %d×%d", n.Rows(), n.Cols())
		}
		rr, err := rowio.NewNPYRowReader(bytes.NewReader(data), path)
		if err != nil {
			t.Fatalf("NewNPYRowReader rejects a header NewNPYReader accepts: %v", err)
		}
		// With zero columns a header may declare more rows than we can
		// afford to loop over; otherwise the data runs out first.
		limit := n.Rows()
		if n.Cols() == 0 {
			limit = min(limit, 1000)
		}
		var vals []float32
		var row rowio.Row
		for i := 0; i < limit; i++ {
			vals, err = n.Read(vals)
			rerr := rr.Read(&row)
			if err != nil {
				var pe *rowio.ParseError
				if !errors.As(err, &pe) || pe.Path != path || pe.Line != i+1 || !errors.Is(err, rowio.ErrFormat) {
					t.Fatalf("row %d: error %v, want a ParseError at row %d wrapping ErrFormat", i+1, err, i+1)
				}
				if rerr == nil || rerr.Error() != err.Error() {
					t.Fatalf("row %d: RowReader error %v, NPYReader error %v", i+1, rerr, err)
				}
				return
			}
			if len(vals) != n.Cols() {
				t.Fatalf("row %d has %d values, want %d", i+1, len(vals), n.Cols())
			}
			if (i+1)*n.Cols()*4 > len(data) {
				t.Fatalf("read %d rows of %d values from %d bytes", i+1, n.Cols(), len(data))
			}
			if rerr != nil || row.Line != i+1 || row.ID != "" || !sameBits(row.Features, vals) {
				t.Fatalf("row %d: RowReader gave %+v, %v; NPYReader gave %v", i+1, row, rerr, vals)
			}
		}
		if limit == n.Rows() {
			if _, err := n.Read(vals); err != io.EOF {
				t.Fatalf("Read after %d rows = %v, want io.EOF", n.Rows(), err)
			}
		}
	})
}

// sameBits reports whether a and b hold the same float32 bit patterns (NaN included).
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
