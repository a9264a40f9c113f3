package fit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
)

// examples makes n varied rows: row i has i%7 non-zeros and i%3+1 classes.
func examples(n int) []Example {
	out := make([]Example, n)
	for i := range out {
		e := Example{Line: i + 1}
		for k := range i % 7 {
			e.Indices = append(e.Indices, int32(i*7+k))
			e.Values = append(e.Values, float32(i)+float32(k)/8)
		}
		for k := range i%3 + 1 {
			e.Classes = append(e.Classes, (i+k)%5)
		}
		switch {
		case i == 3:
			e.Values[0] = float32(math.Inf(-1))
		case i%4 == 1: // bag of words: every value 1
			for k := range e.Values {
				e.Values[k] = 1
			}
		case i%4 == 2: // indices in no order
			slices.Reverse(e.Indices)
		}
		out[i] = e
	}
	return out
}

func sameExample(a, b Example) bool {
	return a.Line == b.Line && slices.Equal(a.Indices, b.Indices) && slices.Equal(a.Classes, b.Classes) &&
		slices.EqualFunc(a.Values, b.Values, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func TestRowStoreRoundTrip(t *testing.T) {
	rows := examples(5000)
	tests := map[string]struct {
		limit     int64
		wantSpill bool
	}{
		"in memory":               {limit: 64 << 20},
		"spilled past the budget": {limit: chunkSize + 64<<10, wantSpill: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := &budget{limit: tc.limit}
			s := newRowStore(b, t.TempDir(), nil)
			defer s.close()
			for i := range rows {
				if err := s.add(&rows[i]); err != nil {
					t.Fatal(err)
				}
				if b.used > b.limit {
					t.Fatalf("row %d: %d bytes in memory, budget %d", i, b.used, b.limit)
				}
			}
			if err := s.finish(); err != nil {
				t.Fatal(err)
			}
			if s.spilled() != tc.wantSpill {
				t.Fatalf("spilled = %v, want %v", s.spilled(), tc.wantSpill)
			}
			if entries, _ := os.ReadDir(s.tempDir); len(entries) != 0 {
				t.Fatalf("temporary files left visible: %v", entries)
			}
			r := &rowReader{s: s}
			var e Example
			for _, i := range permutation(len(rows), 1, 1, false) {
				if err := r.row(int(i), &e); err != nil {
					t.Fatal(err)
				}
				if !sameExample(e, rows[i]) {
					t.Fatalf("row %d read back as %+v, stored %+v", i, e, rows[i])
				}
			}
		})
	}
}

func TestRowStoreIndexOverBudget(t *testing.T) {
	s := newRowStore(&budget{limit: 100}, t.TempDir(), nil)
	defer s.close()
	e := examples(2)[1]
	if err := s.add(&e); !errors.Is(err, ErrMemoryBudget) {
		t.Fatalf("add = %v, want ErrMemoryBudget", err)
	}
}

// TestPermutationIsUniform checks that each row lands in each position
// equally often over many epochs (chi-squared, 25 degrees of freedom; the
// critical value at p = 0.001 is 52.6). A buffer shuffle fails this: early
// rows mostly come first.
func TestPermutationIsUniform(t *testing.T) {
	const n, epochs = 6, 12000
	var counts [n][n]int
	for epoch := 1; epoch <= epochs; epoch++ {
		for pos, row := range permutation(n, 42, epoch, false) {
			counts[row][pos]++
		}
	}
	want := float64(epochs) / n
	chi2 := 0.0
	for _, row := range counts {
		for _, c := range row {
			chi2 += (float64(c) - want) * (float64(c) - want) / want
		}
	}
	if chi2 > 52.6 {
		t.Fatalf("chi-squared %.1f over positions, counts %v", chi2, counts)
	}
	if got := permutation(n, 42, 1, true); !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("KeepOrder permutation %v", got)
	}
	if slices.Equal(permutation(100, 42, 1, false), permutation(100, 42, 2, false)) {
		t.Fatal("two epochs share an order")
	}
	if !slices.Equal(permutation(100, 42, 3, false), permutation(100, 42, 3, false)) {
		t.Fatal("an epoch's order is not reproducible from the seed")
	}
}

func TestOrderGrouped(t *testing.T) {
	labels := func(classes []int) Order {
		var c orderCounter
		for _, k := range classes {
			c.add([]int{k})
		}
		return c.order()
	}
	var sorted, interleaved []int
	for k := range 10 {
		for range 50 {
			sorted = append(sorted, k)
		}
	}
	for i := range 500 {
		interleaved = append(interleaved, (i*7)%10)
	}
	if o := labels(sorted); !o.Grouped() || o.LabelChanges != 9 || !(math.Abs(o.RandomChanges-499*(1-10*50*49/(500.0*499))) <= 1e-9) {
		t.Errorf("sorted file: %+v, grouped %v", o, o.Grouped())
	}
	if o := labels(interleaved); o.Grouped() {
		t.Errorf("interleaved file reported grouped: %+v", o)
	}
	if o := labels(sorted[:50]); o.Grouped() {
		t.Errorf("a one-class file reported grouped: %+v", o)
	}
}

// fullDisk is a spill file that fails with ENOSPC past a size.
type fullDisk struct {
	*os.File
	room int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.File.Write(p[:f.room])
		f.room = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.File.Write(p)
}

// panicModel fails the test's process if training starts: the full-disk
// error must come while the rows are read, before any step.
type panicModel struct{}

func (panicModel) TrainBatch(context.Context, Batch) (float64, dense.Matrix, error) {
	panic("no step may run")
}

func (panicModel) EvaluateBatch(context.Context, Batch) (float64, dense.Matrix, error) {
	panic("no evaluation may run")
}

func (panicModel) Save(context.Context, string) error { panic("nothing may be saved") }

func TestRunFullDisk(t *testing.T) {
	dir := t.TempDir()
	var text strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&text, "%d 1:%d 2:1 3:1 4:1\n", i%3, i)
	}
	src := func() (rowio.RowReader, io.Closer, error) {
		r, err := rowio.NewLibSVMReader(strings.NewReader(text.String()), "train.svm", rowio.LibSVMOptions{Dim: 8, Base: rowio.IndexZero, Sparse: true})
		return r, io.NopCloser(nil), err
	}
	opts := Options{Dim: 8, Labels: NewLabelParser([]string{"a", "b", "c"}, false), TrainPath: "train.svm",
		MemoryBudget: chunkSize, TempDir: dir,
		createTemp: func(dir, pattern string) (spillFile, error) {
			f, err := os.CreateTemp(dir, pattern)
			return &fullDisk{File: f, room: 1 << 10}, err
		}}
	_, err := Run(context.Background(), panicModel{}, src, nil, opts)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Run = %v, want a no-space error naming the temporary file in %s", err, dir)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
