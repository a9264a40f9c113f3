package rowio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/kerasgo/kerasgo/dense"
)

// npyMagic opens every .npy file.
const npyMagic = "\x93NUMPY"

// maxNPYRowBytes bounds one row (256 Mi float32 values), which is held in memory.
const maxNPYRowBytes = 1 << 30

// maxNPYHeader bounds the header we are willing to read (NumPy writes < 1 KiB).
const maxNPYHeader = 1 << 20

var (
	npyDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// NPYReader streams the rows of a 2-D NumPy .npy file of float32 or float64
// values in C order, one row at a time, without loading the file.
// A 1-D array is read as a single column.
type NPYReader struct {
	r     *bufio.Reader
	path  string
	rows  int
	cols  int
	elem  int // bytes per element: 4 or 8
	order binary.ByteOrder
	next  int // next row to read, 0-based
	buf   []byte
}

// NewNPYReader reads the .npy header from r; path names the file in errors.
func NewNPYReader(r io.Reader, path string) (*NPYReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	fail := func(format string, args ...any) error {
		return &ParseError{Path: path, Err: fmt.Errorf("npy header: "+format+": %w", append(args, ErrFormat)...)}
	}
	pre := make([]byte, 8)
	if _, err := io.ReadFull(br, pre); err != nil {
		return nil, fail("reading magic: %v", err)
	}
	if string(pre[:6]) != npyMagic {
		return nil, fail("not a .npy file (magic %q)", pre[:6])
	}
	var hlen int
	switch pre[6] {
	case 1:
		b := make([]byte, 2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fail("reading header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b))
	case 2, 3:
		b := make([]byte, 4)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fail("reading header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint32(b))
	default:
		return nil, fail("format version %d.%d", pre[6], pre[7])
	}
	if hlen > maxNPYHeader {
		return nil, fail("header of %d bytes", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fail("reading header: %v", err)
	}
	h := string(hdr)
	n := &NPYReader{r: br, path: path}

	d := npyDescr.FindStringSubmatch(h)
	if d == nil {
		return nil, fail("no descr in %q", h)
	}
	switch d[1] {
	case "<f4", "|f4":
		n.elem, n.order = 4, binary.LittleEndian
	case ">f4":
		n.elem, n.order = 4, binary.BigEndian
	case "<f8", "|f8":
		n.elem, n.order = 8, binary.LittleEndian
	case ">f8":
		n.elem, n.order = 8, binary.BigEndian
	default:
		return nil, &ParseError{Path: path, Field: "descr", Err: fmt.Errorf("dtype %q, want float32 or float64: %w", d[1], ErrUnsupported)}
	}
	if f := npyFortran.FindStringSubmatch(h); f == nil {
		return nil, fail("no fortran_order in %q", h)
	} else if f[1] == "True" {
		return nil, &ParseError{Path: path, Field: "fortran_order", Err: fmt.Errorf("fortran-ordered arrays cannot be streamed by row: %w", ErrUnsupported)}
	}
	s := npyShape.FindStringSubmatch(h)
	if s == nil {
		return nil, fail("no shape in %q", h)
	}
	var dims []int
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSuffix(part, "L"))
		if err != nil || v < 0 {
			return nil, fail("bad shape %q", s[1])
		}
		dims = append(dims, v)
	}
	switch len(dims) {
	case 1:
		n.rows, n.cols = dims[0], 1
	case 2:
		n.rows, n.cols = dims[0], dims[1]
	default:
		return nil, &ParseError{Path: path, Field: "shape", Err: fmt.Errorf("%d-D array, want 1-D or 2-D: %w", len(dims), ErrUnsupported)}
	}
	// Rows are read whole: bound their size before allocating one.
	if n.cols > maxNPYRowBytes/n.elem {
		return nil, &ParseError{Path: path, Field: "shape", Err: fmt.Errorf("rows of %d values exceed %d bytes: %w", n.cols, maxNPYRowBytes, ErrUnsupported)}
	}
	if n.cols > 0 && n.rows > math.MaxInt/(n.cols*n.elem) {
		return nil, fail("shape %v overflows", dims)
	}
	n.buf = make([]byte, n.cols*n.elem)
	return n, nil
}

// Rows returns the number of rows the header declares.
func (n *NPYReader) Rows() int { return n.rows }

// Cols returns the number of values per row.
func (n *NPYReader) Cols() int { return n.cols }

// Read returns the next row, reusing dst when it has room. At the end of the
// array it returns io.EOF; a file shorter than its header says is an error.
func (n *NPYReader) Read(dst []float32) ([]float32, error) {
	if n.next >= n.rows {
		return nil, io.EOF
	}
	if _, err := io.ReadFull(n.r, n.buf); err != nil {
		return nil, &ParseError{Path: n.path, Line: n.next + 1, Err: fmt.Errorf("row %d of %d: truncated data (%v): %w", n.next+1, n.rows, err, ErrFormat)}
	}
	n.next++
	dst = dst[:0]
	for i := 0; i < n.cols; i++ {
		b := n.buf[i*n.elem:]
		if n.elem == 4 {
			dst = append(dst, math.Float32frombits(n.order.Uint32(b)))
		} else {
			dst = append(dst, float32(math.Float64frombits(n.order.Uint64(b))))
		}
	}
	return dst, nil
}

// ReadNPYFile reads a whole 2-D .npy file into a matrix. It is meant for
// small files (golden data, tests); stream large ones with NPYReader.
func ReadNPYFile(path string) (dense.Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("reading npy: %w", err)
	}
	defer f.Close()
	return readNPY(f, path)
}

func readNPY(r io.Reader, path string) (dense.Matrix, error) {
	n, err := NewNPYReader(r, path)
	if err != nil {
		return dense.Matrix{}, err
	}
	m := dense.Matrix{Rows: n.rows, Cols: n.cols, Data: make([]float32, 0, min(n.rows*n.cols, 1<<24))}
	row := make([]float32, 0, n.cols)
	for {
		row, err = n.Read(row)
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return dense.Matrix{}, err
		}
		m.Data = append(m.Data, row...)
	}
}

// npyRows adapts NPYReader to RowReader.
type npyRows struct{ *NPYReader }

// NewNPYRowReader returns a RowReader over the rows of a .npy stream.
func NewNPYRowReader(r io.Reader, path string) (RowReader, error) {
	n, err := NewNPYReader(r, path)
	if err != nil {
		return nil, err
	}
	return npyRows{n}, nil
}

func (n npyRows) Read(row *Row) error {
	f, err := n.NPYReader.Read(row.Features)
	if err != nil {
		return err
	}
	row.Features, row.Line, row.ID = f, n.next, ""
	return nil
}
