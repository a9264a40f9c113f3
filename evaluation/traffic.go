package evaluation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/kerasgo/kerasgo/atomicfile"
)

// ClassMixFile is where a model records the class mix it was validated on,
// under assets/ (which travels with a SavedModel).
const ClassMixFile = "kerasgo-class-mix.json"

// ClassMix is the class mix a model was validated on: per class, the
// validation rows that hold it (Labels) and those the model predicted it
// for (Predicted). A server compares what it answers with it
// (DiagnoseTraffic).
type ClassMix struct {
	Classes    []string `json:"classes"`
	Rows       int      `json:"rows"`
	MultiLabel bool     `json:"multi_label"`
	Labels     []int    `json:"labels"`
	Predicted  []int    `json:"predicted"`
	// Threshold is the probability at which a multi-label model's output
	// counts as predicted.
	Threshold float64 `json:"threshold"`
	// Source says which rows, for people ("kerasgo train: validation
	// data, epoch 3 (saved)").
	Source string `json:"source"`
}

// MixOf is the class mix of an evaluation report.
func MixOf(r Report, source string) ClassMix {
	return ClassMix{Classes: r.Classes, Rows: r.Rows, MultiLabel: r.MultiLabel,
		Labels: r.Baselines.ClassCounts, Predicted: r.PredictedCounts, Threshold: r.Threshold, Source: source}
}

// Write records the mix in modelDir/assets/ClassMixFile, atomically.
func (c ClassMix) Write(modelDir string) error {
	if err := os.MkdirAll(filepath.Join(modelDir, "assets"), 0o777); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(modelDir, "assets", ClassMixFile), c)
}

// ReadClassMix reads the class mix recorded in modelDir; nil and no error
// for a model that has none.
func ReadClassMix(modelDir string) (*ClassMix, error) {
	path := filepath.Join(modelDir, "assets", ClassMixFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c ClassMix
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Labels) != len(c.Classes) || len(c.Predicted) != len(c.Classes) {
		return nil, fmt.Errorf("%s: %d classes, %d label counts and %d prediction counts", path, len(c.Classes), len(c.Labels), len(c.Predicted))
	}
	return &c, nil
}

// Limits of DiagnoseTraffic.
const (
	// MinTrafficRows is the fewest rows a window needs before
	// DiagnoseTraffic judges it.
	MinTrafficRows = 100
	// NeverPredictedExpected is how many predictions of a class a window
	// must have been expected to hold (its validation share times the
	// predictions in the window) before none counts as never predicted.
	NeverPredictedExpected = 10
)

// Traffic is what a served version answered over a window of rows: the
// predictions of each class, in the order of ClassMix.Classes (rows whose
// top class it was; for multi-label models, rows that have it at the
// threshold), among Rows rows.
type Traffic struct {
	Rows      int
	Predicted []int
}

// DiagnoseTraffic compares the classes a served version predicted over a
// window of traffic with those it predicted on its validation rows, in
// the words of Diagnose: prediction collapse (a class that takes far more
// of the predictions), classes never predicted, and a class-mix shift.
// The comparison is with the validation predictions, not the labels, so
// that a model answering traffic like its validation data is silent. No
// finding, nil, means nothing is wrong. A window of fewer than
// MinTrafficRows rows, or whose Predicted is not one count per class of
// mix, is not judged (nil too).
func DiagnoseTraffic(mix ClassMix, t Traffic) []Finding {
	if t.Rows < MinTrafficRows || len(t.Predicted) != len(mix.Classes) || len(mix.Predicted) != len(mix.Classes) {
		return nil
	}
	live, val := total(t.Predicted), total(mix.Predicted)
	labels := total(mix.Labels)
	if live == 0 || val == 0 {
		return nil
	}
	liveShare := func(j int) float64 { return float64(t.Predicted[j]) / float64(live) }
	valShare := func(j int) float64 { return float64(mix.Predicted[j]) / float64(val) }
	unit := "rows"
	if mix.MultiLabel {
		unit = "predicted labels"
	}
	var out []Finding

	var parts []string
	for j, name := range mix.Classes {
		ps, vs := liveShare(j), valShare(j)
		if ps < CollapseFactor*vs || ps-vs < CollapseExcess {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s receives %s%% of the predictions (%d of %d %s) but received %s%% of them on the validation rows (%d of %d), where it holds %s%% of the labels (%d)",
			quote(name), pct(ps), t.Predicted[j], live, unit, pct(vs), mix.Predicted[j], val, pct(ratio(float64(mix.Labels[j]), float64(labels))), mix.Labels[j]))
	}
	if len(parts) > 0 {
		out = append(out, Finding{Kind: KindPredictionCollapse, Text: "The predictions collapse onto a few classes: " + strings.Join(parts, "; ") +
			". The traffic is no longer like the validation rows, or its inputs changed (a broken feature pipeline sends the same row again and again): score the request log with kerasgo predict, and check recent inputs, before trusting these answers."})
	}

	var never []string
	missed := 0
	for j, name := range mix.Classes {
		if t.Predicted[j] == 0 && valShare(j)*float64(live) >= NeverPredictedExpected {
			never = append(never, fmt.Sprintf("%s (%d on the validation rows)", name, mix.Predicted[j]))
			missed += mix.Predicted[j]
		}
	}
	if len(never) > 0 {
		verb := "are"
		if len(never) == 1 {
			verb = "is"
		}
		out = append(out, Finding{Kind: KindNeverPredicted, Text: fmt.Sprintf(
			"%d of %d classes %s never predicted in the last %d %s although the model predicted them for %s%% of the validation %s: %s.",
			len(never), len(mix.Classes), verb, live, unit, pct(ratio(float64(missed), float64(val))), unit, listNames(never, 8))})
	}

	dist, worst := MixDistance(mix, t)
	if dist > ClassMixDistance {
		out = append(out, Finding{Kind: KindClassMixShift, Text: fmt.Sprintf(
			"The traffic has a different class mix from the validation rows (total variation distance %s between the shares of the predictions, over %s): %s is %s%% of the predictions here and was %s%% on the validation rows. "+
				"Accuracy measured on the validation rows does not carry over to this traffic.",
			f3(dist), f3(ClassMixDistance), quote(mix.Classes[worst]), pct(liveShare(worst)), pct(valShare(worst)))})
	}
	return out
}

// MixDistance is the total variation distance between the shares of the
// predictions in t and on the validation rows, and the class whose share
// differs most; 0 when either has none.
func MixDistance(mix ClassMix, t Traffic) (float64, int) {
	live, val := total(t.Predicted), total(mix.Predicted)
	if live == 0 || val == 0 || len(t.Predicted) != len(mix.Predicted) {
		return 0, 0
	}
	dist, worst, worstD := 0.0, 0, -1.0
	for j := range mix.Predicted {
		d := math.Abs(float64(t.Predicted[j])/float64(live) - float64(mix.Predicted[j])/float64(val))
		dist += d / 2
		if d > worstD {
			worst, worstD = j, d
		}
	}
	return dist, worst
}

func total(counts []int) int {
	n := 0
	for _, k := range counts {
		n += k
	}
	return n
}
