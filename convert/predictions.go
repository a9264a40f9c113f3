package convert

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// PredictionOptions say how probabilities become labels in the output.
type PredictionOptions struct {
	// Classes names the outputs; empty means class_0, class_1, ...
	Classes []string
	// MultiLabel picks every class at or above Threshold; otherwise the
	// class with the highest probability is picked.
	MultiLabel bool
	// Threshold for MultiLabel; 0 means the default, 0.5.
	Threshold float32
}

// CSVPredictionWriter writes one line per example: its id, the predicted
// label(s) (several joined by "|"), the winning probability, then one column
// per class.
type CSVPredictionWriter struct {
	w       *csv.Writer
	opts    PredictionOptions
	started bool
	width   int // probabilities per row; -1 until the first Write
	rec     []string
}

// NewCSVPredictionWriter returns a writer to w. Errors surface from Write or Flush.
func NewCSVPredictionWriter(w io.Writer, opts PredictionOptions) *CSVPredictionWriter {
	if opts.Threshold == 0 {
		opts.Threshold = 0.5
	}
	return &CSVPredictionWriter{w: csv.NewWriter(w), opts: opts, width: -1}
}

func (p *CSVPredictionWriter) className(i int) string {
	if i < len(p.opts.Classes) {
		return p.opts.Classes[i]
	}
	return "class_" + strconv.Itoa(i)
}

// Write writes the prediction for one example.
func (p *CSVPredictionWriter) Write(id string, probs []float32) error {
	if p.width < 0 {
		p.width = len(probs)
		if len(p.opts.Classes) > 0 {
			p.width = len(p.opts.Classes)
		}
	}
	if len(probs) != p.width {
		return fmt.Errorf("writing prediction %q: %d probabilities, want %d (one per class)", id, len(probs), p.width)
	}
	if !p.started {
		p.started = true
		header := []string{"id", "label", "score"}
		for i := range probs {
			header = append(header, "p_"+p.className(i))
		}
		if err := p.w.Write(header); err != nil {
			return fmt.Errorf("writing predictions header: %w", err)
		}
	}
	label, score := p.decide(probs)
	p.rec = append(p.rec[:0], id, label, strconv.FormatFloat(float64(score), 'g', 7, 32))
	for _, v := range probs {
		p.rec = append(p.rec, strconv.FormatFloat(float64(v), 'g', 7, 32))
	}
	if err := p.w.Write(p.rec); err != nil {
		return fmt.Errorf("writing prediction %q: %w", id, err)
	}
	return nil
}

// decide turns probabilities into the label column and its score.
func (p *CSVPredictionWriter) decide(probs []float32) (string, float32) {
	if len(probs) == 0 {
		return "", 0
	}
	best := 0
	for i, v := range probs {
		if v > probs[best] {
			best = i
		}
	}
	if !p.opts.MultiLabel {
		return p.className(best), probs[best]
	}
	var names []string
	for i, v := range probs {
		if v >= p.opts.Threshold {
			names = append(names, p.className(i))
		}
	}
	return strings.Join(names, "|"), probs[best]
}

// Flush writes buffered lines and reports any write error.
func (p *CSVPredictionWriter) Flush() error {
	p.w.Flush()
	if err := p.w.Error(); err != nil {
		return fmt.Errorf("writing predictions: %w", err)
	}
	return nil
}
