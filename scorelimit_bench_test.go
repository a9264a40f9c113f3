package kerasgo_test

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
)

// BenchmarkScoreLimit is the limit of batch scoring a libsvm file: the
// model calls alone for the batches `kerasgo predict` makes of it (500
// rows, sparse), run by as many goroutines as its scoring workers, with the
// file read and parsed beforehand and nothing written. One iteration scores
// the whole file. scripts/bench_predict.py sets KERASGO_BENCH_MODEL and
// KERASGO_BENCH_LIBSVM and sets the result beside `kerasgo predict`'s wall
// time: the difference is what reading, parsing, batching and writing cost.
func BenchmarkScoreLimit(b *testing.B) {
	dir, path := os.Getenv("KERASGO_BENCH_MODEL"), os.Getenv("KERASGO_BENCH_LIBSVM")
	if dir == "" || path == "" {
		b.Skip("KERASGO_BENCH_MODEL and KERASGO_BENCH_LIBSVM are not set: run `make bench`")
	}
	ctx := context.Background()
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	batches, rows := readBatches(b, path, m.InputDim(), 500)
	workers := min(runtime.NumCPU(), 4) // score.Options' default
	for b.Loop() {
		next := make(chan sparse.CSR)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for x := range next {
					if _, err := m.PredictSparse(ctx, x); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, x := range batches {
			next <- x
		}
		close(next)
		wg.Wait()
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// readBatches reads a zero-based libsvm file into CSR batches of size rows.
func readBatches(b *testing.B, path string, dim, size int) ([]sparse.CSR, int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := rowio.NewLibSVMReader(f, path, rowio.LibSVMOptions{Dim: dim, Base: rowio.IndexZero, Sparse: true})
	if err != nil {
		b.Fatal(err)
	}
	var batches []sparse.CSR
	x, rows := sparse.New(dim), 0
	var row rowio.Row
	for {
		err := r.Read(&row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		x.AppendRow(row.Indices, row.Values)
		if rows++; x.Rows == size {
			batches = append(batches, x)
			x = sparse.New(dim)
		}
	}
	if x.Rows > 0 {
		batches = append(batches, x)
	}
	return batches, rows
}
