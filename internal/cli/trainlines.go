package cli

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
)

// The lines train prints while it trains.

// dataLine says what train read before its first step.
func dataLine(d fit.Data, path string) string {
	where := "in memory"
	if d.OnDisk {
		where = "in a temporary file (past --memory-budget)"
	}
	s := fmt.Sprintf("read %d training rows", d.TrainRows)
	if d.ValRows > 0 {
		s += fmt.Sprintf(" and %d validation rows", d.ValRows)
	}
	return s + fmt.Sprintf(" from %s (%s parsed, %s)", path, humanize.IBytes(uint64(d.Bytes)), where)
}

// startLine is the summary of the model as loaded, in the epoch lines' form.
func startLine(r evaluation.Report, opts fit.Options) string {
	return fmt.Sprintf("epoch 0/%d (the model as loaded): val loss %.4f (%s, macro F1 %.3f)", opts.Epochs, r.Loss, reportHead(r), r.MacroF1)
}

func reportHead(r evaluation.Report) string {
	if r.MultiLabel {
		return fmt.Sprintf("subset acc %.3f, micro F1 %.3f, binary acc %.3f", value(r.SubsetAccuracy), value(r.MicroF1), r.BinaryAccuracy)
	}
	return fmt.Sprintf("top-1 acc %.3f, binary acc %.3f", value(r.Top1Accuracy), r.BinaryAccuracy)
}

// epochLine is the one-line summary printed after each epoch.
func epochLine(e fit.Epoch, opts fit.Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d: loss %.4f", e.Epoch, opts.Epochs, e.TrainLoss)
	fmt.Fprintf(&b, " (%s)", reportHead(e.Train))
	if e.Val != nil {
		fmt.Fprintf(&b, " | val loss %.4f (%s, macro F1 %.3f)", e.Val.Loss, reportHead(*e.Val), e.Val.MacroF1)
	}
	return b.String()
}

// newStepBar is a spinner of training steps on a terminal, nil elsewhere.
func newStepBar(stderr io.Writer) *progressbar.ProgressBar {
	if !isTerminal(stderr) {
		return nil
	}
	return progressbar.NewOptions(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"), progressbar.OptionClearOnFinish())
}

// value reads a metric that only one label mode has (NaN when absent).
func value(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// report sets the progress callbacks that print the data, start and epoch
// lines.
func (f *trainFlags) report(env *Env, opts *fit.Options) {
	opts.OnData = func(d fit.Data) {
		fmt.Fprintln(env.Stdout, dataLine(d, f.data))
		if o := d.Order; o.Grouped() {
			fmt.Fprintf(env.Stdout, "note: %s is grouped by label (%d label changes in %d rows; a random order would have about %.0f).\n"+
				"      Every epoch is shuffled, so training here is unaffected; a tool that trains in file order would not be.\n",
				f.data, o.LabelChanges, o.Rows, o.RandomChanges)
		}
	}
	opts.OnStart = func(r evaluation.Report) { fmt.Fprintln(env.Stdout, startLine(r, *opts)) }
	opts.OnEpoch = func(e fit.Epoch) { fmt.Fprintln(env.Stdout, epochLine(e, *opts)) }
}
