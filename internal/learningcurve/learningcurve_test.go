package learningcurve_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kerasgo/kerasgo/internal/learningcurve"
)

func TestSave(t *testing.T) {
	panels := []learningcurve.Panel{
		{Title: "loss", YLabel: "binary cross-entropy", Series: []learningcurve.Series{
			{Name: "train", Values: []float64{math.NaN(), 0.5, 0.3, 0.2}},
			{Name: "validation", Values: []float64{0.6, 0.55, 0.4, math.NaN()}},
		}, Baselines: []learningcurve.Baseline{{Name: "predicting class frequencies", Value: 0.7}}},
		{Title: "macro F1", YLabel: "F1", Series: []learningcurve.Series{{Name: "validation", Values: []float64{0.1, 0.2, 0.25}}}},
	}
	dir := t.TempDir()
	for name, magic := range map[string][]byte{"c.png": []byte("\x89PNG"), "c.svg": []byte("<?xml")} {
		path := filepath.Join(dir, name)
		if err := learningcurve.Save(path, panels); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(b, magic) || len(b) < 1000 {
			t.Fatalf("%s: %d bytes, err %v", name, len(b), err)
		}
	}
	// The SVG names every curve and baseline, and starts at epoch 0.
	var svg bytes.Buffer
	if err := learningcurve.Render(&svg, "svg", panels); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"predicting class frequencies", "validation", "epoch (0: the model as loaded)", ">0<"} {
		if !bytes.Contains(svg.Bytes(), []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := learningcurve.Save(filepath.Join(dir, "c.gif"), panels); err == nil {
		t.Fatal("a .gif plot: want an error")
	}
}
