package tfmodel_test

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// TestCPUProfiler runs predictions under Go's CPU profiler (runtime/pprof,
// SIGPROF) for a few seconds: the process must survive and the profile
// hold samples. Before tfmodel kept SIGPROF off TensorFlow's threads, this
// aborted with "corrupted size vs. prev_size" within seconds.
func TestCPUProfiler(t *testing.T) {
	var profile bytes.Buffer
	if err := pprof.StartCPUProfile(&profile); err != nil {
		t.Skipf("a CPU profile is already running (go test -cpuprofile): %v", err)
	}
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	x := readNPY(t, e.Inputs)
	batch := dense.New(500, x.Cols)
	for i := range batch.Rows {
		copy(batch.Row(i), x.Row(i%x.Rows))
	}
	ctx := context.Background()
	// Exposure, not a timing assertion: the crash came within 3 s.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if _, err := m.Predict(ctx, batch); err != nil {
			pprof.StopCPUProfile()
			t.Fatal(err)
		}
	}
	pprof.StopCPUProfile()
	if profile.Len() == 0 {
		t.Fatal("empty CPU profile")
	}
}
