package evaluation_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// scenarioData is one evaluation: targets and a model's probabilities.
type scenarioData struct {
	classes []string
	multi   bool
	targets dense.Matrix
	probs   dense.Matrix
}

// simulate draws rows: label(rng) gives a row's true classes, model(rng,
// classes) the probabilities a model outputs for it.
func simulate(c, rows int, seed uint64, multi bool, label func(*rand.Rand) []int, model func(*rand.Rand, []int) []float32) scenarioData {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := scenarioData{multi: multi, targets: dense.New(rows, c), probs: dense.New(rows, c)}
	for j := range c {
		d.classes = append(d.classes, "class-"+string(rune('a'+j%26))+string(rune('a'+j/26)))
	}
	for i := range rows {
		classes := label(rng)
		for _, k := range classes {
			d.targets.Row(i)[k] = 1
		}
		copy(d.probs.Row(i), model(rng, classes))
	}
	return d
}

// report evaluates d with Keras' binary cross-entropy as the loss.
func (d scenarioData) report(tb testing.TB) evaluation.Report {
	tb.Helper()
	acc, err := evaluation.NewAccumulator(evaluation.Options{Classes: d.classes, MultiLabel: d.multi, Loss: evaluation.BinaryCrossentropy})
	if err != nil {
		tb.Fatal(err)
	}
	if err := acc.Add(d.probs, d.targets, bce(d.probs, d.targets)); err != nil {
		tb.Fatal(err)
	}
	return acc.Report()
}

// bce is Keras' binary cross-entropy: the mean over rows and outputs, with
// probabilities clipped to [1e-7, 1 − 1e-7].
func bce(p, t dense.Matrix) float64 {
	var sum float64
	for i, v := range p.Data {
		q := min(max(float64(v), 1e-7), 1-1e-7)
		y := float64(t.Data[i])
		sum -= y*math.Log(q) + (1-y)*math.Log(1-q)
	}
	return sum / float64(len(p.Data))
}

// uniform draws one class of c uniformly.
func uniform(c int) func(*rand.Rand) []int {
	return func(rng *rand.Rand) []int { return []int{rng.IntN(c)} }
}

// answer outputs high for class k and low for the others.
func answer(c, k int, high, low float32) []float32 {
	p := make([]float32, c)
	for j := range p {
		p[j] = low
	}
	p[k] = high
	return p
}

// other returns a class of c other than k.
func other(rng *rand.Rand, c, k int) int {
	return (k + 1 + rng.IntN(c-1)) % c
}

// goodModel is right with p 0.9 on 97% of rows.
func goodModel(c int) func(*rand.Rand, []int) []float32 {
	return func(rng *rand.Rand, k []int) []float32 {
		if rng.Float64() < 0.97 {
			return answer(c, k[0], 0.9, 0.02)
		}
		return answer(c, other(rng, c, k[0]), 0.6, 0.02)
	}
}

// TestScenarios runs the diagnosis on evaluations generated to show one
// problem each, and asserts which findings appear and which do not: exactly
// the listed kinds, and the Keras note only where binary accuracy could be
// mistaken for the accuracy that fits the task.
func TestScenarios(t *testing.T) {
	const rows = 2000
	good := func(c int) scenarioData { return simulate(c, rows, 1, false, uniform(c), goodModel(c)) }
	tests := map[string]struct {
		data     scenarioData
		in       func(t *testing.T) evaluation.Inputs
		want     []evaluation.FindingKind
		wantNote bool
		texts    map[evaluation.FindingKind][]string
	}{
		// The question: C = 20, sigmoid outputs that never pass 0.5. Keras
		// 2.3 printed binary accuracy 0.95 as "accuracy".
		"binary-accuracy trap": {
			data: simulate(20, rows, 2, false, uniform(20), func(rng *rand.Rand, k []int) []float32 {
				if rng.Float64() < 0.4 {
					return answer(20, k[0], 0.3, 0.04)
				}
				return answer(20, other(rng, 20, k[0]), 0.3, 0.04)
			}),
			in: func(*testing.T) evaluation.Inputs {
				return evaluation.Inputs{History: []evaluation.HistoryEntry{{TrainLoss: 0.2, ValLoss: 0.21, ValMetric: 0.95}, {TrainLoss: 0.18, ValLoss: 0.19, ValMetric: 0.96}}}
			},
			// Nothing passes 0.5, so no class is ever "predicted" for
			// binary accuracy, but top-1 predicts every class.
			want:     []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap},
			wantNote: true,
			texts:    map[evaluation.FindingKind][]string{evaluation.KindBinaryAccuracyTrap: {"(1 − 1/20)", "ended at 0.960"}},
		},
		"heavy imbalance, a majority-class model": {
			data: simulate(5, rows, 3, false, func(rng *rand.Rand) []int {
				if rng.Float64() < 0.95 {
					return []int{0}
				}
				return []int{1 + rng.IntN(4)}
			}, func(*rand.Rand, []int) []float32 { return []float32{0.95, 0.0125, 0.0125, 0.0125, 0.0125} }),
			want: []evaluation.FindingKind{evaluation.KindImbalance, evaluation.KindNoBetterThanPrior, evaluation.KindNeverPredicted},
			// Binary accuracy 0.979 beside top-1 0.948.
			wantNote: true,
			texts:    map[evaluation.FindingKind][]string{evaluation.KindNeverPredicted: {"4 of 5 classes are never predicted"}},
		},
		"overfitting: a small training set, many epochs": {
			data: simulate(10, rows, 4, false, uniform(10), func(rng *rand.Rand, k []int) []float32 {
				if rng.Float64() < 0.6 {
					return answer(10, k[0], 0.95, 0.01)
				}
				return answer(10, other(rng, 10, k[0]), 0.99, 0.01)
			}),
			in: func(t *testing.T) evaluation.Inputs {
				train := good(10).report(t)
				return evaluation.Inputs{Train: &train}
			},
			// Binary accuracy (0.92) reads far above top-1 (0.60): the trap too.
			want:     []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindOverfitting, evaluation.KindConfidentlyWrong},
			wantNote: true,
			texts:    map[evaluation.FindingKind][]string{evaluation.KindConfidentlyWrong: {"confidently wrong", "typical of overfitting"}},
		},
		"plateau": {
			data: good(8),
			in: func(*testing.T) evaluation.Inputs {
				return evaluation.Inputs{History: []evaluation.HistoryEntry{{TrainLoss: 0.3, ValLoss: 0.3}, {TrainLoss: 0.05, ValLoss: 0.0501},
					{TrainLoss: 0.049, ValLoss: 0.0500}, {TrainLoss: 0.048, ValLoss: 0.0502}}}
			},
			want: []evaluation.FindingKind{evaluation.KindPlateau},
		},
		// 40% of the labels are wrong; the model predicts the clean label
		// with confidence, so its loss is above the prior's although its
		// accuracy is far above the majority baseline: not "learned nothing".
		"label noise": {
			data: simulate(10, rows, 5, false, uniform(10), func(rng *rand.Rand, k []int) []float32 {
				if rng.Float64() < 0.6 {
					return answer(10, k[0], 0.99, 0.005)
				}
				return answer(10, other(rng, 10, k[0]), 0.99, 0.005)
			}),
			want:     []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindConfidentlyWrong},
			wantNote: true,
		},
		"prediction collapse": {
			data: simulate(10, rows, 6, false, uniform(10), func(_ *rand.Rand, k []int) []float32 {
				if k[0] >= 5 {
					return answer(10, 0, 0.8, 0.02)
				}
				return answer(10, k[0], 0.9, 0.02)
			}),
			want:     []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindPredictionCollapse, evaluation.KindNeverPredicted},
			wantNote: true,
			texts: map[evaluation.FindingKind][]string{
				evaluation.KindPredictionCollapse: {`"class-aa" receives`, "most rows of 5 other classes go to it"},
				evaluation.KindNeverPredicted:     {"5 of 10 classes are never predicted"},
			},
		},
		"a model made worse by retraining": {
			data: simulate(6, rows, 7, false, uniform(6), func(rng *rand.Rand, k []int) []float32 {
				if rng.Float64() < 0.85 {
					return answer(6, k[0], 0.9, 0.02)
				}
				return answer(6, other(rng, 6, k[0]), 0.6, 0.02)
			}),
			in: func(t *testing.T) evaluation.Inputs {
				start := good(6).report(t)
				return evaluation.Inputs{Start: &start}
			},
			want:     []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindWorseThanStart},
			wantNote: true,
			texts:    map[evaluation.FindingKind][]string{evaluation.KindWorseThanStart: {"model training started from"}},
		},
		"validation rows with another class mix": {
			data: good(4),
			in: func(t *testing.T) evaluation.Inputs {
				skewed := simulate(4, rows, 8, false, func(rng *rand.Rand) []int {
					if rng.Float64() < 0.7 {
						return []int{3}
					}
					return []int{rng.IntN(3)}
				}, goodModel(4)).report(t)
				return evaluation.Inputs{Train: &skewed}
			},
			want: []evaluation.FindingKind{evaluation.KindClassMixShift},
		},
		"a solved task": {
			data: simulate(5, rows, 9, false, uniform(5), func(rng *rand.Rand, k []int) []float32 {
				if rng.Float64() < 0.99 {
					return answer(5, k[0], 0.97, 0.01)
				}
				return answer(5, other(rng, 5, k[0]), 0.6, 0.01)
			}),
			want: []evaluation.FindingKind{evaluation.KindOK},
		},
		"a solved multi-label task": {
			data: simulate(6, rows, 10, true, func(rng *rand.Rand) []int {
				return []int{rng.IntN(3), 3 + rng.IntN(3)}
			}, func(_ *rand.Rand, k []int) []float32 {
				p := answer(6, k[0], 0.95, 0.02)
				p[k[1]] = 0.95
				return p
			}),
			want: []evaluation.FindingKind{evaluation.KindOK},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var in evaluation.Inputs
			if tc.in != nil {
				in = tc.in(t)
			}
			r := tc.data.report(t)
			got := evaluation.Diagnose(r, in)
			var kinds []evaluation.FindingKind
			note := false
			for _, f := range got {
				if f.Kind == evaluation.KindKerasAccuracyNote {
					note = true
					continue
				}
				kinds = append(kinds, f.Kind)
			}
			if !slices.Equal(kinds, tc.want) || note != tc.wantNote {
				t.Fatalf("findings %v (note %v), want %v (note %v):\n%s", kinds, note, tc.want, tc.wantNote, texts(got))
			}
			for kind, subs := range tc.texts {
				for _, s := range subs {
					assertContains(t, findKind(got, kind).Text, s)
				}
			}
			checkAgree(t, r, in, got)
		})
	}
}

func texts(fs []evaluation.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("- " + string(f.Kind) + ": " + f.Text + "\n")
	}
	return b.String()
}

// checkAgree asserts the consistency rules of Diagnose against the numbers
// of the report the findings came from: no finding states what another
// number on the same report refutes.
func checkAgree(tb testing.TB, r evaluation.Report, in evaluation.Inputs, got []evaluation.Finding) {
	tb.Helper()
	exact, _ := r.ExactAccuracy()
	base, _ := r.ExactBaseline()
	has := func(kind evaluation.FindingKind) bool { return findKind(got, kind) != nil }
	learned := exact > base+evaluation.BaselineMargin || (r.MultiLabel && r.MicroF1 != nil && *r.MicroF1 > evaluation.BaselineMargin)
	switch {
	case has(evaluation.KindNoBetterThanPrior) && learned:
		tb.Errorf("says the model learned nothing, but %v is well above the baseline %v:\n%s", exact, base, texts(got))
	case has(evaluation.KindConfidentlyWrong) && !learned:
		tb.Errorf("says the model learned, but %v is at the baseline %v:\n%s", exact, base, texts(got))
	case (has(evaluation.KindNoBetterThanPrior) || has(evaluation.KindConfidentlyWrong)) && r.Loss < r.Baselines.PriorLoss:
		tb.Errorf("says the loss is above the prior, but %v < %v:\n%s", r.Loss, r.Baselines.PriorLoss, texts(got))
	case has(evaluation.KindOK) && len(got) > 2, has(evaluation.KindOK) && len(got) == 2 && !has(evaluation.KindKerasAccuracyNote):
		tb.Errorf("says all is well beside other findings:\n%s", texts(got))
	case has(evaluation.KindKerasAccuracyNote) && !has(evaluation.KindBinaryAccuracyTrap) && !(math.Abs(r.BinaryAccuracy-exact) > evaluation.BaselineMargin):
		tb.Errorf("gives the Keras note although binary accuracy %v reads like %v:\n%s", r.BinaryAccuracy, exact, texts(got))
	case has(evaluation.KindWorseThanStart) && in.Start == nil:
		tb.Errorf("says training made the model worse without a starting point:\n%s", texts(got))
	}
}

// TestFindingsAgree runs the consistency rules on many random evaluations:
// random class counts, label skews and model qualities.
func TestFindingsAgree(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		c := 2 + rng.IntN(12)
		multi := rng.IntN(4) == 0
		skew := rng.Float64()
		quality, confidence := rng.Float64(), 0.5+rng.Float64()/2
		label := func(rng *rand.Rand) []int {
			k := rng.IntN(c)
			if rng.Float64() < skew {
				k = 0
			}
			if multi && rng.IntN(2) == 0 {
				return []int{k, (k + 1) % c}
			}
			return []int{k}
		}
		model := func(rng *rand.Rand, k []int) []float32 {
			if rng.Float64() < quality {
				return answer(c, k[0], float32(confidence), float32((1-confidence)/float64(c)))
			}
			return answer(c, rng.IntN(c), float32(confidence), float32((1-confidence)/float64(c)))
		}
		eval := simulate(c, 200, seed, multi, label, model).report(t)
		train := simulate(c, 200, seed+1000, multi, label, model).report(t)
		start := simulate(c, 200, seed+2000, multi, label, model).report(t)
		in := evaluation.Inputs{Train: &train, Start: &start}
		checkAgree(t, eval, in, evaluation.Diagnose(eval, in))
	}
}
