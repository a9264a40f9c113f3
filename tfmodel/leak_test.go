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

// TestNoLeak checks that RSS stops growing over many predictions and many
// load/close cycles. A leak adds the same memory with every call, for ever;
// the allocator (glibc's arenas, TensorFlow's caches, finalizers not yet run)
// grows RSS to a plateau whose height, and the calls it takes to get there,
// depend on the machine (cores, threads, MALLOC_ARENA_MAX) and then stops.
// So the bound is set by the leak, not by what the allocator did on one
// machine: after a warm-up the test makes calls in windows, and passes once
// RSS grew by less than a quarter of a window's leak in quietWindows windows
// in a row. However high the allocator's plateau, that comes; with a leak it
// never does (memory the allocator returns late can hide a window's leak:
// seen once in a trial with an injected leak, never twice in a row).
func TestNoLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the leak check takes ~15 s")
	}
	g := readGolden(t)
	e := g.Models["fortunes"]
	dir := filepath.Join(testdata, e.Model)
	x := readNPY(t, e.Inputs) // 64 rows: 64 KiB in, 5 KiB out per call
	ctx := context.Background()
	// Fixed thread pools, so the number of threads allocating (and with it
	// glibc's arenas) does not grow with the machine's cores. TensorFlow sizes
	// its process-wide pools from the first session, which is this one when
	// the test runs alone, as `make test` runs it.
	opts := tfmodel.DefaultOptions()
	opts.IntraOpThreads, opts.InterOpThreads = 2, 2

	m := loadModel(t, dir, opts)
	predict := func(tb testing.TB) {
		if _, err := m.Predict(ctx, x); err != nil {
			tb.Fatal(err)
		}
	}
	cycle := func(tb testing.TB) {
		m, err := tfmodel.Load(ctx, dir, opts)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := m.Predict(ctx, x); err != nil {
			tb.Fatal(err)
		}
		if err := m.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	const quietWindows = 3
	tests := []struct {
		name       string
		call       func(testing.TB)
		warmUp     int     // calls before measuring
		window     int     // calls between measurements
		maxWindows int     // the most windows the allocator gets to settle in
		leakMiB    float64 // what the smallest leak guarded against adds per call
	}{
		// A leaked input tensor: 64 rows × 256 float32 = 64 KiB per call.
		{name: "predictions", call: predict, warmUp: 2000, window: 1000, maxWindows: 12, leakMiB: 64.0 / 1024},
		// A leaked session: at least its variables and Adam's two slots,
		// 3 × 258,770 float32 ≈ 3 MiB per cycle.
		{name: "load-close cycles", call: cycle, warmUp: 10, window: 10, maxWindows: 12, leakMiB: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range tc.warmUp {
				tc.call(t)
			}
			bound := tc.leakMiB * float64(tc.window) / 4
			runtime.GC()
			prev := rssMiB(t)
			var grew []float64 // RSS growth in each window
			quiet := 0         // windows in a row that grew less than bound
			for range tc.maxWindows {
				for range tc.window {
					tc.call(t)
				}
				runtime.GC()
				now := rssMiB(t)
				grew = append(grew, now-prev)
				if now-prev < bound {
					quiet++
				} else {
					quiet = 0
				}
				prev = now
				if quiet == quietWindows {
					t.Logf("RSS growth per %d calls (MiB): %.1f; a leak would add %.0f, the bound is %.1f", tc.window, grew, 4*bound, bound)
					return
				}
			}
			t.Errorf("RSS growth per %d calls (MiB): %.1f; never below %.1f (a quarter of the %.0f a leak adds) %d times in a row",
				tc.window, grew, bound, 4*bound, quietWindows)
		})
	}
}
