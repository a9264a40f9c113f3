package evaluation_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// goldenFile is testdata/golden/metrics_<set>.json, written by
// scripts/make_metrics_golden.py with scikit-learn and Keras.
type goldenFile struct {
	Inputs struct {
		Probabilities        string          `json:"probabilities"`
		Labels               string          `json:"labels"`
		Rows                 int             `json:"rows"`
		Batches              []int           `json:"batches"`
		BatchLosses          []float64       `json:"batch_losses"`
		Loss                 evaluation.Loss `json:"loss"`
		Threshold            float32         `json:"threshold"`
		MultiLabel           bool            `json:"multi_label"`
		PriorLossCategorical *float64        `json:"prior_loss_categorical"`
	} `json:"inputs"`
	Want json.RawMessage `json:"want"`
}

const goldenDir = "../testdata/golden"

func TestGolden(t *testing.T) {
	for _, set := range []string{"fortunes", "debtags"} {
		t.Run(set, func(t *testing.T) {
			var g goldenFile
			b, err := os.ReadFile(filepath.Join(goldenDir, "metrics_"+set+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			in := g.Inputs
			probs := readNPY(t, filepath.Join(goldenDir, in.Probabilities))
			classes := readLines(t, filepath.Join("../testdata/features", set, "classes.txt"))
			targets := readLabels(t, filepath.Join("../testdata", in.Labels), in.Rows, len(classes))
			if probs.Rows != in.Rows || probs.Cols != len(classes) {
				t.Fatalf("probabilities are %d×%d, want %d×%d", probs.Rows, probs.Cols, in.Rows, len(classes))
			}

			run := func(loss evaluation.Loss) evaluation.Report {
				acc, err := evaluation.NewAccumulator(evaluation.Options{
					Classes: classes, MultiLabel: in.MultiLabel, Threshold: in.Threshold, Loss: loss,
				})
				if err != nil {
					t.Fatal(err)
				}
				from := 0
				for i, n := range in.Batches {
					if err := acc.Add(probs.Slice(from, from+n), targets.Slice(from, from+n), in.BatchLosses[i]); err != nil {
						t.Fatal(err)
					}
					from += n
				}
				return acc.Report()
			}

			got, err := json.Marshal(run(in.Loss))
			if err != nil {
				t.Fatal(err)
			}
			var gotTree, wantTree any
			if err := json.Unmarshal(got, &gotTree); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(g.Want, &wantTree); err != nil {
				t.Fatal(err)
			}
			compared := 0
			compareJSON(t, "report", gotTree, wantTree, &compared)
			t.Logf("compared %d numbers", compared)

			// BatchLoss reproduces Keras' loss of each batch, and the
			// categorical loss of the prior.
			from := 0
			for i, n := range in.Batches {
				got, err := evaluation.BatchLoss(in.Loss, probs.Slice(from, from+n), targets.Slice(from, from+n))
				if err != nil || !(math.Abs(got-in.BatchLosses[i]) <= 1e-6) {
					t.Errorf("batch %d: BatchLoss %v (%v), Keras %v", i, got, err, in.BatchLosses[i])
				}
				from += n
			}
			if in.PriorLossCategorical != nil {
				prior := dense.New(targets.Rows, targets.Cols)
				for i := range targets.Rows {
					for j := range targets.Cols {
						var count float32
						for r := range targets.Rows {
							count += targets.Row(r)[j]
						}
						prior.Row(i)[j] = count / float32(targets.Rows)
					}
				}
				if got, err := evaluation.BatchLoss(evaluation.CategoricalCrossentropy, prior, targets); err != nil || !(math.Abs(got-*in.PriorLossCategorical) <= 1e-6) {
					t.Errorf("categorical BatchLoss of the prior %v (%v), Keras %v", got, err, *in.PriorLossCategorical)
				}
				r := run(evaluation.CategoricalCrossentropy)
				if d := math.Abs(r.Baselines.PriorLoss - *in.PriorLossCategorical); !(d <= 1e-6) { // NaN fails too
					t.Errorf("categorical prior loss %v, Keras %v", r.Baselines.PriorLoss, *in.PriorLossCategorical)
				}
			}
		})
	}
}

// compareJSON checks that got and want, decoded JSON, have the same keys,
// lengths, strings and booleans, and numbers within 1e-6.
func compareJSON(tb testing.TB, path string, got, want any, compared *int) {
	tb.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			tb.Errorf("%s: got %T, want an object", path, got)
			return
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				tb.Errorf("%s.%s: not in the golden file", path, k)
			}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				tb.Errorf("%s.%s: missing", path, k)
				continue
			}
			compareJSON(tb, path+"."+k, gv, wv, compared)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			tb.Errorf("%s: got %v, want %v", path, got, want)
			return
		}
		for i := range w {
			compareJSON(tb, fmt.Sprintf("%s[%d]", path, i), g[i], w[i], compared)
		}
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > 1e-6 {
			tb.Errorf("%s: got %v, want %v", path, got, want)
		}
		*compared++
	default:
		if got != want {
			tb.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}

var npyShape = regexp.MustCompile(`'shape': \((\d+), (\d+)\)`)

// readNPY reads a 2-D little-endian float32 C-order .npy file.
func readNPY(tb testing.TB, path string) dense.Matrix {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		tb.Fatalf("%s: not a .npy file", path)
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	default:
		hlen, start = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	header := string(b[start : start+hlen])
	m := npyShape.FindStringSubmatch(header)
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") || m == nil {
		tb.Fatalf("%s: header %q is not a 2-D little-endian float32 C-order array", path, header)
	}
	rows, _ := strconv.Atoi(m[1])
	cols, _ := strconv.Atoi(m[2])
	data := b[start+hlen:]
	if len(data) != 4*rows*cols {
		tb.Fatalf("%s: %d data bytes for %d×%d", path, len(data), rows, cols)
	}
	out := dense.New(rows, cols)
	for i := range out.Data {
		out.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return slices.DeleteFunc(strings.Split(string(b), "\n"), func(s string) bool { return strings.TrimSpace(s) == "" })
}

// readLabels returns the first rows labels of a libsvm file (the first
// field: comma-separated class indices) as multi-hot rows.
func readLabels(tb testing.TB, path string, rows, classes int) dense.Matrix {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := dense.New(rows, classes)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	i := 0
	for ; i < rows && sc.Scan(); i++ {
		first, _, _ := strings.Cut(sc.Text(), " ")
		if first == "" {
			continue
		}
		for _, s := range strings.Split(first, ",") {
			c, err := strconv.Atoi(s)
			if err != nil || c < 0 || c >= classes {
				tb.Fatalf("%s:%d: bad label %q", path, i+1, s)
			}
			out.Row(i)[c] = 1
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if i != rows {
		tb.Fatalf("%s: %d lines, want %d", path, i, rows)
	}
	return out
}
