//go:build !race

// The race detector keeps its own shadow memory, which swamps RSS; `make
// test` runs this file in a separate run without -race.

package tfmodel_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/kerasgo/kerasgo/tfmodel"
)

// rssMiB reads the resident set size, which unlike the Go heap includes the
// memory TensorFlow allocates in C.
func rssMiB(tb testing.TB) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Fatal(err)
	}
	fields := bytes.Fields(b)
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20)
}

// TestNoLeak checks that RSS stays flat over many predictions and many
// load/close cycles. A leaked session of this model costs at least 3 MiB per
// cycle (its variables and optimizer state), and a leaked input tensor 64 KiB
// per call. glibc's per-thread arenas grow to a plateau first (about +60 MiB
// over the first 10,000 calls, then flat), so the measurement starts after a
// warm-up (and `make test` caps the arenas with MALLOC_ARENA_MAX=2); the
// bounds sit well below what either leak would add. Measured runs: +9..+35 MiB
// over 5,000 predictions, -9..+10 MiB over 40 load/close cycles.
func TestNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the leak check takes ~15 s")
	}
	g := readGolden(t)
	e := g.Models["fortunes"]
	dir := filepath.Join(testdata, e.Model)
	x := readNPY(t, e.Inputs) // 64 rows: 64 KiB in, 5 KiB out per call
	ctx := context.Background()

	m := loadModel(t, dir, tfmodel.DefaultOptions())
	predict := func(n int) {
		for range n {
			if _, err := m.Predict(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
	}
	predict(5000) // reach the allocator's plateau (measured: ~60 MiB by 10,000 calls, flat after)
	runtime.GC()
	start := rssMiB(t)
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("KERASGO_LEAK_PREDICTS")); err == nil {
		n = v
	}
	predict(n)
	runtime.GC()
	grew := rssMiB(t) - start
	t.Logf("RSS over 5,000 predictions: %.1f MiB -> %.1f MiB (%+.1f MiB)", start, start+grew, grew)
	if grew > 64 {
		t.Errorf("RSS grew %.1f MiB over 5,000 predictions of 64 rows (leaked inputs would add 320 MiB; the allocator alone stays under 64)", grew)
	}

	cycle := func() {
		m, err := tfmodel.Load(ctx, dir, tfmodel.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Predict(ctx, x); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cycles := 40
	if n, err := strconv.Atoi(os.Getenv("KERASGO_LEAK_CYCLES")); err == nil {
		cycles = n
	}
	for range 10 {
		cycle()
	}
	runtime.GC()
	start = rssMiB(t)
	for range cycles {
		cycle()
	}
	runtime.GC()
	grew = rssMiB(t) - start
	t.Logf("RSS over %d load/close cycles: %.1f MiB -> %.1f MiB (%+.1f MiB)", cycles, start, start+grew, grew)
	if grew > 50 {
		t.Errorf("RSS grew %.1f MiB over %d load/close cycles (leaked sessions would add >= %d MiB)", grew, cycles, 3*cycles)
	}
}
