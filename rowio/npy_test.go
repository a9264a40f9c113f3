package rowio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

// npyDict returns the header dictionary NumPy writes for an array: the repr
// of {'descr': ..., 'fortran_order': ..., 'shape': ...}, shape as a tuple.
func npyDict(descr string, fortran bool, shape ...int) string {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	order := "False"
	if fortran {
		order = "True"
	}
	return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + tuple + ", }"
}

// npyFile returns a .npy file the way numpy.lib.format writes one: the magic
// string, the format version major.0, the header length (uint16 for version
// 1, uint32 for 2 and 3, little-endian), then the header dict padded with
// spaces and ended by '\n' so that the data starts at a multiple of 64 bytes.
func npyFile(tb testing.TB, major byte, dict string, data []byte) []byte {
	tb.Helper()
	lenBytes := 2
	if major >= 2 {
		lenBytes = 4
	}
	prefix := 6 + 2 + lenBytes
	pad := 64 - (prefix+len(dict)+1)%64
	header := dict + strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.Write([]byte{major, 0})
	if lenBytes == 2 {
		if len(header) > math.MaxUint16 {
			tb.Fatalf("header of %d bytes needs format version 2", len(header))
		}
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(header))))
	} else {
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(header))))
	}
	b.WriteString(header)
	if b.Len()%64 != 0 {
		tb.Fatalf("npy data offset %d is not a multiple of 64", b.Len())
	}
	b.Write(data)
	return b.Bytes()
}

// npyData encodes values as a NumPy dtype: '<f4', '>f4', '<f8', '>f8' or '<i8'.
func npyData(tb testing.TB, descr string, values ...float64) []byte {
	tb.Helper()
	var order binary.AppendByteOrder = binary.LittleEndian
	if descr[0] == '>' {
		order = binary.BigEndian
	}
	var b []byte
	for _, v := range values {
		switch descr[1:] {
		case "f4":
			b = order.AppendUint32(b, math.Float32bits(float32(v)))
		case "f8":
			b = order.AppendUint64(b, math.Float64bits(v))
		case "i8":
			b = order.AppendUint64(b, uint64(int64(v)))
		default:
			tb.Fatalf("npyData: dtype %q", descr)
		}
	}
	return b
}

// readNPYRows reads every row of a .npy stream with NPYReader.
func readNPYRows(tb testing.TB, n *rowio.NPYReader) ([][]float32, error) {
	tb.Helper()
	var rows [][]float32
	var row []float32
	for {
		var err error
		row, err = n.Read(row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, append([]float32{}, row...))
	}
}

func TestNPYHeaderHelperMatchesNumPy(t *testing.T) {
	// The helper must write the header byte for byte as NumPy wrote the golden file.
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	got := npyFile(t, 1, npyDict("<f4", false, 64, 256), nil)
	if len(golden) < len(got) || !bytes.Equal(golden[:len(got)], got) {
		t.Errorf("helper header\n%q\nNumPy header\n%q", got, golden[:min(len(got), len(golden))])
	}
}

func TestNPYReader(t *testing.T) {
	third := 1.0 / 3
	tests := map[string]struct {
		file     []byte
		rows     int
		cols     int
		want     [][]float32
		tailData bool // bytes after the array, which are ignored
	}{
		"float32 2-D": {
			file: npyFile(t, 1, npyDict("<f4", false, 2, 3), npyData(t, "<f4", 1, 2, 3, 4, 5, 6)),
			rows: 2, cols: 3,
			want: [][]float32{{1, 2, 3}, {4, 5, 6}},
		},
		"float64 2-D": {
			file: npyFile(t, 1, npyDict("<f8", false, 3, 2), npyData(t, "<f8", 0.1, -2, third, 1e-300, 1e300, -0.5)),
			rows: 3, cols: 2,
			want: [][]float32{{0.1, -2}, {float32(third), 0}, {float32(math.Inf(1)), -0.5}},
		},
		"float32 1-D": {
			file: npyFile(t, 1, npyDict("<f4", false, 3), npyData(t, "<f4", 0.25, 0.5, 0.75)),
			rows: 3, cols: 1,
			want: [][]float32{{0.25}, {0.5}, {0.75}},
		},
		"float64 1-D": {
			file: npyFile(t, 1, npyDict("<f8", false, 2), npyData(t, "<f8", 7, -7)),
			rows: 2, cols: 1,
			want: [][]float32{{7}, {-7}},
		},
		"big-endian float32": {
			file: npyFile(t, 1, npyDict(">f4", false, 1, 2), npyData(t, ">f4", 1.5, -3)),
			rows: 1, cols: 2,
			want: [][]float32{{1.5, -3}},
		},
		"big-endian float64": {
			file: npyFile(t, 1, npyDict(">f8", false, 2, 1), npyData(t, ">f8", 1.5, -3)),
			rows: 2, cols: 1,
			want: [][]float32{{1.5}, {-3}},
		},
		"version 2.0 header": {
			file: npyFile(t, 2, npyDict("<f4", false, 2, 2), npyData(t, "<f4", 1, 2, 3, 4)),
			rows: 2, cols: 2,
			want: [][]float32{{1, 2}, {3, 4}},
		},
		"version 3.0 header": {
			file: npyFile(t, 3, npyDict("<f8", false, 1, 2), npyData(t, "<f8", 1, 2)),
			rows: 1, cols: 2,
			want: [][]float32{{1, 2}},
		},
		"keys in another order": {
			file: npyFile(t, 1, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4'}", npyData(t, "<f4", 8, 9)),
			rows: 1, cols: 2,
			want: [][]float32{{8, 9}},
		},
		"Python 2 long shape": {
			file: npyFile(t, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", npyData(t, "<f4", 8, 9)),
			rows: 1, cols: 2,
			want: [][]float32{{8, 9}},
		},
		"no rows": {
			file: npyFile(t, 1, npyDict("<f4", false, 0, 5), nil),
			rows: 0, cols: 5,
		},
		"empty 1-D": {
			file: npyFile(t, 1, npyDict("<f8", false, 0), nil),
			rows: 0, cols: 1,
		},
		"trailing bytes ignored": {
			file: npyFile(t, 1, npyDict("<f4", false, 1, 1), npyData(t, "<f4", 3, 4, 5)),
			rows: 1, cols: 1,
			want: [][]float32{{3}},
		},
		"special values": {
			file: npyFile(t, 1, npyDict("<f4", false, 1, 3), npyData(t, "<f4", math.Inf(-1), math.MaxFloat32, math.SmallestNonzeroFloat32)),
			rows: 1, cols: 3,
			want: [][]float32{{float32(math.Inf(-1)), math.MaxFloat32, math.SmallestNonzeroFloat32}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := rowio.NewNPYReader(bytes.NewReader(tc.file), "a.npy")
			if err != nil {
				t.Fatalf("NewNPYReader: %v", err)
			}
			if n.Rows() != tc.rows || n.Cols() != tc.cols {
				t.Errorf("shape %d×%d, want %d×%d", n.Rows(), n.Cols(), tc.rows, tc.cols)
			}
			got, err := readNPYRows(t, n)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %v, want %v", got, tc.want)
			}
			if _, err := n.Read(nil); err != io.EOF {
				t.Errorf("Read after the last row = %v, want io.EOF", err)
			}

			// The RowReader view numbers rows from 1 and has no ids.
			rr, err := rowio.NewNPYRowReader(bytes.NewReader(tc.file), "a.npy")
			if err != nil {
				t.Fatalf("NewNPYRowReader: %v", err)
			}
			rows, err := readAllRows(t, rr)
			if err != nil {
				t.Fatalf("RowReader.Read: %v", err)
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("RowReader read %d rows, want %d", len(rows), len(tc.want))
			}
			for i, r := range rows {
				if r.Line != i+1 || r.ID != "" || !reflect.DeepEqual(r.Features, tc.want[i]) {
					t.Errorf("RowReader row %d = %+v, want {Line:%d ID: Features:%v}", i, r, i+1, tc.want[i])
				}
			}

			// ReadNPYFile gives the same values as one matrix.
			path := filepath.Join(t.TempDir(), "a.npy")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := rowio.ReadNPYFile(path)
			if err != nil {
				t.Fatalf("ReadNPYFile: %v", err)
			}
			if m.Rows != tc.rows || m.Cols != tc.cols || len(m.Data) != tc.rows*tc.cols {
				t.Fatalf("ReadNPYFile: %d×%d with %d values, want %d×%d", m.Rows, m.Cols, len(m.Data), tc.rows, tc.cols)
			}
			for i, row := range tc.want {
				if got := m.Data[i*tc.cols : (i+1)*tc.cols]; !reflect.DeepEqual(got, row) {
					t.Errorf("ReadNPYFile row %d = %v, want %v", i, got, row)
				}
			}
		})
	}
}

func TestNPYReaderReusesRow(t *testing.T) {
	file := npyFile(t, 1, npyDict("<f4", false, 2, 2), npyData(t, "<f4", 1, 2, 3, 4))
	n, err := rowio.NewNPYReader(bytes.NewReader(file), "a.npy")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 0, 4)
	row, err := n.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if &row[0] != &buf[:1][0] {
		t.Error("Read allocated although dst had room")
	}
	if row, err = n.Read(row); err != nil || !reflect.DeepEqual(row, []float32{3, 4}) {
		t.Errorf("second Read = %v, %v; want [3 4], nil", row, err)
	}
}

func TestNPYReaderErrors(t *testing.T) {
	valid := npyFile(t, 1, npyDict("<f4", false, 3, 2), npyData(t, "<f4", 1, 2, 3, 4, 5, 6))
	withLen := func(major byte, n uint32) []byte {
		b := []byte("\x93NUMPY\x00\x00")
		b[6] = major
		if major == 1 {
			return binary.LittleEndian.AppendUint16(b, uint16(n))
		}
		return binary.LittleEndian.AppendUint32(b, n)
	}
	tests := map[string]struct {
		file     []byte
		wantRows int // rows read before the error; -1: NewNPYReader fails
		want     rowio.ParseError
		sentinel error
	}{
		"empty": {
			file: nil, wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"truncated magic": {
			file: valid[:4], wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"bad magic": {
			file: append([]byte("\x93NUMPZ"), valid[6:]...), wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"not npy at all": {
			file: []byte("id,a,b\nx,1,2\n"), wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"unknown version": {
			file: append([]byte("\x93NUMPY\x04\x00"), valid[8:]...), wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"truncated header length": {
			file: valid[:9], wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"truncated v2 header length": {
			file: withLen(2, 0)[:10], wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"truncated header": {
			file: valid[:40], wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"header longer than the file": {
			file: append(withLen(1, 200), "{'descr': '<f4'}"...), wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"huge header length": {
			file: withLen(2, 1<<30), wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"no descr": {
			file:     npyFile(t, 1, "{'fortran_order': False, 'shape': (1, 1), }", npyData(t, "<f4", 1)),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"no fortran_order": {
			file:     npyFile(t, 1, "{'descr': '<f4', 'shape': (1, 1), }", npyData(t, "<f4", 1)),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"no shape": {
			file:     npyFile(t, 1, "{'descr': '<f4', 'fortran_order': False, }", npyData(t, "<f4", 1)),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"bad shape": {
			file:     npyFile(t, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", npyData(t, "<f4", 1, 2)),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"negative shape": {
			file:     npyFile(t, 1, npyDict("<f4", false, 2, -1), nil),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"shape overflows": {
			file:     npyFile(t, 1, npyDict("<f8", false, math.MaxInt/2, 3), nil),
			wantRows: -1, sentinel: rowio.ErrFormat,
		},
		"int64 dtype": {
			file:     npyFile(t, 1, npyDict("<i8", false, 1, 2), npyData(t, "<i8", 1, 2)),
			wantRows: -1, want: rowio.ParseError{Field: "descr"}, sentinel: rowio.ErrUnsupported,
		},
		"float16 dtype": {
			file:     npyFile(t, 1, npyDict("<f2", false, 1, 2), []byte{0, 0, 0, 0}),
			wantRows: -1, want: rowio.ParseError{Field: "descr"}, sentinel: rowio.ErrUnsupported,
		},
		"fortran order": {
			file:     npyFile(t, 1, npyDict("<f4", true, 2, 2), npyData(t, "<f4", 1, 2, 3, 4)),
			wantRows: -1, want: rowio.ParseError{Field: "fortran_order"}, sentinel: rowio.ErrUnsupported,
		},
		"3-D": {
			file:     npyFile(t, 1, npyDict("<f4", false, 2, 2, 2), npyData(t, "<f4", 1, 2, 3, 4, 5, 6, 7, 8)),
			wantRows: -1, want: rowio.ParseError{Field: "shape"}, sentinel: rowio.ErrUnsupported,
		},
		"0-D": {
			file:     npyFile(t, 1, npyDict("<f4", false), npyData(t, "<f4", 1)),
			wantRows: -1, want: rowio.ParseError{Field: "shape"}, sentinel: rowio.ErrUnsupported,
		},
		"no data": {
			file:     valid[:len(valid)-24],
			wantRows: 0, want: rowio.ParseError{Line: 1}, sentinel: rowio.ErrFormat,
		},
		"truncated in the last row": {
			file:     valid[:len(valid)-1],
			wantRows: 2, want: rowio.ParseError{Line: 3}, sentinel: rowio.ErrFormat,
		},
		"truncated between rows": {
			file:     valid[:len(valid)-8],
			wantRows: 2, want: rowio.ParseError{Line: 3}, sentinel: rowio.ErrFormat,
		},
		"truncated float64 1-D": {
			file:     npyFile(t, 1, npyDict("<f8", false, 4), npyData(t, "<f8", 1, 2)),
			wantRows: 2, want: rowio.ParseError{Line: 3}, sentinel: rowio.ErrFormat,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.want.Path = "dir/x.npy"
			n, err := rowio.NewNPYReader(bytes.NewReader(tc.file), "dir/x.npy")
			if tc.wantRows < 0 {
				if err == nil {
					t.Fatalf("NewNPYReader succeeded (shape %d×%d), want an error", n.Rows(), n.Cols())
				}
				checkParseError(t, err, &tc.want, tc.sentinel)
				return
			}
			if err != nil {
				t.Fatalf("NewNPYReader: %v", err)
			}
			rows, err := readNPYRows(t, n)
			if len(rows) != tc.wantRows {
				t.Errorf("read %d rows before the error, want %d", len(rows), tc.wantRows)
			}
			if err == nil {
				t.Fatal("Read succeeded, want an error")
			}
			checkParseError(t, err, &tc.want, tc.sentinel)

			path := filepath.Join(t.TempDir(), "x.npy")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := rowio.ReadNPYFile(path); !errors.Is(err, tc.sentinel) {
				t.Errorf("ReadNPYFile error = %v, want %v", err, tc.sentinel)
			}
		})
	}
}

func TestReadNPYFileMissing(t *testing.T) {
	_, err := rowio.ReadNPYFile(filepath.Join(t.TempDir(), "missing.npy"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want fs.ErrNotExist", err)
	}
}

// TestNPYGolden reads arrays NumPy wrote (see scripts/make_testdata.py).
func TestNPYGolden(t *testing.T) {
	tests := map[string]struct {
		rows, cols int
		binary     bool // every value is 0 or 1
	}{
		"fortunes_inputs.npy":        {rows: 64, cols: 256, binary: true},
		"fortunes_probabilities.npy": {rows: 64, cols: 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "testdata", "golden", name)
			m, err := rowio.ReadNPYFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != tc.rows || m.Cols != tc.cols || len(m.Data) != tc.rows*tc.cols {
				t.Fatalf("%d×%d with %d values, want %d×%d", m.Rows, m.Cols, len(m.Data), tc.rows, tc.cols)
			}
			distinct := map[float32]bool{}
			for i := range m.Rows {
				nonzero := 0
				for j, v := range m.Data[i*m.Cols : (i+1)*m.Cols] {
					if !(v >= 0 && v <= 1) {
						t.Fatalf("value (%d, %d) = %v, want it in [0, 1]", i, j, v)
					}
					if tc.binary && v != 0 && v != 1 {
						t.Fatalf("input (%d, %d) = %v, want 0 or 1", i, j, v)
					}
					if v != 0 {
						nonzero++
					}
					distinct[v] = true
				}
				if tc.binary && nonzero == 0 {
					t.Errorf("input row %d is all zeros", i)
				}
			}
			// Real data, not a constant array: a misread byte order or
			// offset would not give this many plausible values.
			wantDistinct := 2
			if !tc.binary {
				wantDistinct = tc.rows
			}
			if len(distinct) < wantDistinct {
				t.Errorf("%d distinct values, want at least %d", len(distinct), wantDistinct)
			}

			// Streaming gives the same rows as ReadNPYFile.
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, err := rowio.NewNPYReader(f, path)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := readNPYRows(t, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != m.Rows {
				t.Fatalf("streamed %d rows, want %d", len(rows), m.Rows)
			}
			for i, row := range rows {
				if !reflect.DeepEqual(row, m.Data[i*m.Cols:(i+1)*m.Cols]) {
					t.Fatalf("streamed row %d differs from ReadNPYFile", i)
				}
			}
		})
	}
}
