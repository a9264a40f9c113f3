package fit

import (
	"fmt"

	"github.com/kerasgo/kerasgo/evaluation"
)

// Metric is a validation quantity that training watches: for early
// stopping and the best weights (Options.Monitor), and for judging a new
// model against a served one (package promote). It implements pflag.Value,
// so a command binds it to a flag directly.
type Metric string

// The validation metrics, named as Keras names its validation logs.
const (
	// ValLoss is the validation loss; lower is better.
	ValLoss Metric = "val_loss"
	// ValMacroF1 is the validation macro-averaged F1; higher is better.
	ValMacroF1 Metric = "val_macro_f1"
)

// Metrics lists every Metric.
func Metrics() []Metric { return []Metric{ValLoss, ValMacroF1} }

// ParseMetric returns the metric named s, or an error listing the names.
func ParseMetric(s string) (Metric, error) {
	for _, m := range Metrics() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("metric %q: want %s or %s", s, ValLoss, ValMacroF1)
}

// Value returns the metric's value in a validation report.
func (m Metric) Value(r evaluation.Report) float64 {
	if m == ValMacroF1 {
		return r.MacroF1
	}
	return r.Loss
}

// HigherIsBetter reports whether a larger value is an improvement.
func (m Metric) HigherIsBetter() bool { return m == ValMacroF1 }

// Improvement returns how much better after is than before (positive:
// better), whichever direction the metric improves in.
func (m Metric) Improvement(before, after float64) float64 {
	if m.HigherIsBetter() {
		return after - before
	}
	return before - after
}

// String returns the metric's name.
func (m Metric) String() string { return string(m) }

// Set parses a flag value (pflag.Value).
func (m *Metric) Set(s string) error {
	v, err := ParseMetric(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the flag's value type (pflag.Value).
func (m *Metric) Type() string { return "metric" }
