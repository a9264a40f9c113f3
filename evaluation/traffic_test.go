package evaluation_test

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/evaluation"
)

// draw samples n predictions from the shares of counts.
func draw(rng *rand.Rand, counts []int, n int) []int {
	total := 0
	for _, k := range counts {
		total += k
	}
	out := make([]int, len(counts))
	for range n {
		r := rng.IntN(total)
		for j, k := range counts {
			if r < k {
				out[j]++
				break
			}
			r -= k
		}
	}
	return out
}

// TestDiagnoseTraffic: traffic drawn like the validation predictions is
// silent, over many windows; traffic that collapses onto one class, never
// predicts classes, or shifts its mix gets the finding with its numbers.
func TestDiagnoseTraffic(t *testing.T) {
	mix := evaluation.ClassMix{Classes: []string{"art", "love", "work", "zippy"}, Rows: 1000,
		Labels: []int{250, 250, 250, 250}, Predicted: []int{300, 200, 250, 250}}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		if f := evaluation.DiagnoseTraffic(mix, evaluation.Traffic{Rows: 1000, Predicted: draw(rng, mix.Predicted, 1000)}); f != nil {
			t.Fatalf("window %d drawn like the validation rows: %v", i, f)
		}
	}
	for _, c := range []struct {
		name      string
		predicted []int
		kinds     []evaluation.FindingKind
		says      []string
	}{
		{"collapse onto work", []int{100, 50, 800, 50}, []evaluation.FindingKind{evaluation.KindPredictionCollapse, evaluation.KindClassMixShift},
			[]string{`"work" receives 80.0% of the predictions (800 of 1000 rows) but received 25.0% of them on the validation rows (250 of 1000), where it holds 25.0% of the labels (250)`,
				"total variation distance 0.550"}},
		{"never art", []int{0, 300, 350, 350}, []evaluation.FindingKind{evaluation.KindNeverPredicted, evaluation.KindClassMixShift},
			[]string{"1 of 4 classes is never predicted in the last 1000 rows although the model predicted them for 30.0% of the validation rows: art (300 on the validation rows)."}},
		{"too few rows", []int{0, 0, 50, 0}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := 0
			for _, k := range c.predicted {
				rows += k
			}
			found := evaluation.DiagnoseTraffic(mix, evaluation.Traffic{Rows: rows, Predicted: c.predicted})
			var kinds []evaluation.FindingKind
			text := ""
			for _, f := range found {
				kinds = append(kinds, f.Kind)
				text += f.Text + "\n"
			}
			if !reflect.DeepEqual(kinds, c.kinds) {
				t.Fatalf("kinds %v, want %v:\n%s", kinds, c.kinds, text)
			}
			for _, s := range c.says {
				if !strings.Contains(text, s) {
					t.Errorf("findings do not say %q:\n%s", s, text)
				}
			}
		})
	}
}

// TestClassMixFile writes a report's mix into a model directory and reads
// it back.
func TestClassMixFile(t *testing.T) {
	dir := t.TempDir()
	if got, err := evaluation.ReadClassMix(dir); got != nil || err != nil {
		t.Fatalf("a model without a mix: %v, %v", got, err)
	}
	r := evaluation.Report{Rows: 3, Classes: []string{"a", "b"}, PredictedCounts: []int{2, 1}}
	r.Baselines.ClassCounts = []int{1, 2}
	want := evaluation.MixOf(r, "test")
	if err := want.Write(filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	got, err := evaluation.ReadClassMix(filepath.Join(dir, "m"))
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("%+v, %v; want %+v", got, err, want)
	}
}
