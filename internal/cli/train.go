package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/internal/atomicfile"
	"github.com/kerasgo/kerasgo/internal/learningcurve"
	"github.com/kerasgo/kerasgo/internal/promote"
	"github.com/kerasgo/kerasgo/metrics"
)

type trainFlags struct {
	data, valData, out, classWeight, monitor, plot string
	memoryBudget                                   string
	valSplit, learningRate                         float64
	epochs, batchSize, patience                    int
	checkpointEvery                                int
	resume, shuffle                                bool
	seed                                           uint64
	// Gated promotion into a TF Serving base path (--into).
	into, promoteIf, modelConfig string
	minImprovement               float64
	keep                         int
}

func trainCommand() *Command {
	return &Command{
		Name:      "train",
		UsageLine: "kerasgo train MODEL_DIR --data FILE --out NEW_DIR [flags]\n       kerasgo train --into BASE --data FILE --validation-data FILE [flags]",
		Short:     "keep training a model from Go on new data, and evaluate it honestly",
		Long: `Train reads labelled rows (libsvm, or JSONL with "label"/"labels") once,
then runs the model's exported training step on sparse batches, visiting the
rows in a new uniformly random order every epoch, as Keras' fit(shuffle=True)
does, whatever the order of the file (a file sorted by label trains as well
as a shuffled one). Parsed rows stay in memory up to --memory-budget and move
to an unlinked temporary file ($TMPDIR) past it, so memory stays bounded
whatever the file size. --shuffle=false keeps file order.

With validation data (--validation-data, or a --validation-split of the rows
held out at fixed random positions) it evaluates the model as loaded first
(epoch 0), then after each epoch, printing one summary line each; at the end
it prints the evaluation block of the model it saved, with baselines and a
plain-language diagnosis (see kerasgo evaluate).

MODEL_DIR is never modified. NEW_DIR is written atomically when training ends:
with validation data, the weights of the best epoch by --monitor, which is
the model as loaded when no epoch beat it; without, the last ones. --early-stopping-patience P stops after P epochs without
improvement. SIGINT/SIGTERM stop after the current step and save the weights
reached so far to NEW_DIR. --checkpoint-every N saves NEW_DIR.checkpoint every
N steps; --resume continues from it. --plot draws the learning curves.

--into BASE keeps a served model fresh. BASE is a TF Serving base path
(numbered version directories, as kerasgo serve and TF Serving read them).
Training starts from its highest version, writes the new model to a staging
directory inside BASE (ignored by servers), and judges both on the same
validation data by --promote-if (val_loss or val_macro_f1, which is also
what the best epoch is chosen by). Only a new model that beats the served
one by at least --min-improvement is published, as BASE/<highest+1>
(zero-padded like the existing names), renamed into place under a lock so
concurrent promotions never collide. Otherwise the staging directory is
kept, both sets of numbers and the diagnosis are printed, and train exits
with status 3 ("not promoted"), which a cron job or CI pipeline can tell
from a failure (1). --keep N then removes versions beyond the newest N,
never the one just compared, the new one, or one that --model-config (the
server's config file) pins or labels.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &trainFlags{}
			fs.StringVar(&f.data, "data", "", "training data: libsvm, or JSONL with labels (required)")
			fs.StringVar(&f.out, "out", "", "directory for the trained model (required)")
			fs.StringVar(&f.valData, "validation-data", "", "validation data, same formats")
			fs.Float64Var(&f.valSplit, "validation-split", 0, "hold out this fraction of --data for validation (the same rows every epoch)")
			fs.IntVar(&f.epochs, "epochs", 1, "passes over the training data")
			fs.IntVar(&f.batchSize, "batch-size", 500, "rows per training step")
			fs.Float64Var(&f.learningRate, "learning-rate", 0, "set the optimizer's learning rate (default: keep the model's)")
			fs.BoolVar(&f.shuffle, "shuffle", true, "visit the rows in a new random order every epoch (false: file order)")
			fs.StringVar(&f.memoryBudget, "memory-budget", humanize.IBytes(fit.DefaultMemoryBudget), "parsed rows kept in memory before they move to a temporary file (e.g. 512MiB, 2GB)")
			fs.StringVar(&f.classWeight, "class-weight", "", `"auto" (balanced: n / (classes × count)) or a file of "class weight" lines`)
			fs.IntVar(&f.patience, "early-stopping-patience", 0, "stop after this many epochs without improvement (0: never)")
			fs.StringVar(&f.monitor, "monitor", fit.MonitorValLoss, "what early stopping and best weights watch: val_loss or val_macro_f1")
			fs.IntVar(&f.checkpointEvery, "checkpoint-every", 0, "save a checkpoint every N steps (0: never)")
			fs.BoolVar(&f.resume, "resume", false, "continue from NEW_DIR.checkpoint")
			fs.StringVar(&f.plot, "plot", "", "write learning curves to FILE.png or FILE.svg")
			fs.StringVar(&f.into, "into", "", "train BASE's highest version and publish the result as BASE's next version only if it is better")
			fs.StringVar(&f.promoteIf, "promote-if", promote.MetricValLoss, "with --into: the metric that must improve, val_loss or val_macro_f1")
			fs.Float64Var(&f.minImprovement, "min-improvement", 0, "with --into: how much --promote-if must improve (0: at least as good, and some epoch must beat the served model)")
			fs.IntVar(&f.keep, "keep", 0, "with --into: keep the newest N versions after publishing (0: keep all)")
			fs.StringVar(&f.modelConfig, "model-config", "", "with --into and --keep: the server's model config, whose pinned and labelled versions are never removed")
			fs.Uint64Var(&f.seed, "seed", 0, "shuffling seed")
			return f.run
		},
	}
}

// openTrainable opens a model for train or evaluate, with the fit options
// its metadata implies. The caller closes it.
func openTrainable(ctx context.Context, dir string) (*kerasgo.Model, fit.Options, error) {
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		return nil, fit.Options{}, err
	}
	opts, err := m.FitOptions()
	if err != nil {
		m.Close()
		return nil, fit.Options{}, err
	}
	return m, opts, nil
}

// labelledSource is the model's source over a labelled file; a file in a
// format without labels is a usage error.
func labelledSource(m *kerasgo.Model, path string) (fit.Source, error) {
	src, err := m.LabelledSource(path)
	if errors.Is(err, convert.ErrUnknownFormat) {
		return nil, usagef("%v", err)
	}
	return src, err
}

// check enforces each numeric flag's range, naming the flag and what its
// smallest allowed value means.
func (f *trainFlags) check() error {
	switch {
	case f.epochs < 1:
		return usagef("--epochs must be at least 1")
	case f.batchSize < 1:
		return usagef("--batch-size must be at least 1")
	case f.patience < 0:
		return usagef("--early-stopping-patience must be 0 (never stop early) or more")
	case f.checkpointEvery < 0:
		return usagef("--checkpoint-every must be 0 (no checkpoints) or more")
	case f.valSplit < 0 || f.valSplit >= 1:
		return usagef("--validation-split must be at least 0 and below 1")
	case f.learningRate < 0:
		return usagef("--learning-rate must be 0 (keep the model's) or more")
	}
	if _, err := f.budget(); err != nil {
		return err
	}
	return nil
}

// budget parses --memory-budget.
func (f *trainFlags) budget() (int64, error) {
	n, err := humanize.ParseBytes(f.memoryBudget)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, usagef("--memory-budget %q: want a size above 0 such as 512MiB or 2GB", f.memoryBudget)
	}
	return int64(n), nil
}

func (f *trainFlags) run(ctx context.Context, env *Env, args []string) error {
	var gate *promotion
	if f.into != "" {
		var err error
		if gate, args, err = f.prepareInto(args); err != nil {
			return err
		}
	}
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	if f.data == "" || f.out == "" {
		return usagef("--data and --out are required")
	}
	if f.valData != "" && f.valSplit > 0 {
		return usagef("give --validation-data or --validation-split, not both")
	}
	if err := f.check(); err != nil {
		return err
	}
	budget, _ := f.budget()
	src, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	out, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	if src == out {
		return usagef("--out must differ from MODEL_DIR, which train never modifies")
	}
	checkpointDir := out + ".checkpoint"
	statePath := checkpointDir + ".state.json"
	var resume *fit.State
	loadDir := args[0]
	if f.resume {
		st, err := fit.ReadState(statePath)
		if err != nil {
			return fmt.Errorf("--resume: %w (no checkpoint from an earlier run with --checkpoint-every?)", err)
		}
		resume, loadDir = &st, checkpointDir
	}
	m, opts, err := openTrainable(ctx, loadDir)
	if err != nil {
		return err
	}
	defer m.Close()
	if f.learningRate > 0 {
		if err := m.SetLearningRate(ctx, f.learningRate); err != nil {
			return err
		}
	}
	train, err := labelledSource(m, f.data)
	if err != nil {
		return err
	}
	var val fit.Source
	if f.valData != "" {
		if val, err = labelledSource(m, f.valData); err != nil {
			return err
		}
	}
	opts.Epochs, opts.BatchSize, opts.KeepOrder, opts.Seed = f.epochs, f.batchSize, !f.shuffle, f.seed
	opts.MemoryBudget = budget
	opts.ValidationSplit, opts.Monitor, opts.Patience = f.valSplit, f.monitor, f.patience
	opts.CheckpointEvery, opts.Resume = f.checkpointEvery, resume
	opts.TrainPath, opts.ValPath = f.data, f.valData
	if opts.CheckpointEvery > 0 {
		opts.CheckpointDir = checkpointDir
	}
	hasVal := val != nil || f.valSplit > 0
	bestDir := ""
	if hasVal {
		if bestDir, err = atomicfile.TempDir(out + ".best"); err != nil {
			return err
		}
		defer os.RemoveAll(bestDir)
		opts.BestDir = filepath.Join(bestDir, "model")
	}
	switch f.classWeight {
	case "":
	case "auto":
		opts.BalanceClasses = true
	default:
		file, err := os.Open(f.classWeight)
		if errors.Is(err, fs.ErrNotExist) {
			return usagef("--class-weight %q: want auto or an existing file", f.classWeight)
		}
		if err != nil {
			return err
		}
		opts.ClassWeights, err = fit.ReadClassWeights(file, f.classWeight, opts.Labels)
		file.Close()
		if err != nil {
			return err
		}
	}

	bar := newStepBar(env.Stderr)
	opts.OnData = func(d fit.Data) {
		fmt.Fprintln(env.Stdout, dataLine(d, f.data))
		if o := d.Order; o.Grouped() {
			fmt.Fprintf(env.Stdout, "note: %s is grouped by label (%d label changes in %d rows; a random order would have about %.0f).\n"+
				"      Every epoch is shuffled, so training here is unaffected; a tool that trains in file order would not be.\n",
				f.data, o.LabelChanges, o.Rows, o.RandomChanges)
		}
	}
	opts.OnStart = func(r metrics.Report) {
		fmt.Fprintln(env.Stdout, startLine(r, opts))
	}
	opts.OnStep = func(epoch, step int, loss float64) {
		if bar != nil {
			bar.Describe(fmt.Sprintf("epoch %d/%d step %d loss %.4f", epoch, opts.Epochs, step, loss))
			_ = bar.Add(1)
		}
	}
	opts.OnEpoch = func(e fit.Epoch) {
		if bar != nil {
			_ = bar.Clear()
		}
		fmt.Fprintln(env.Stdout, epochLine(e, opts))
	}
	res, err := fit.Run(ctx, m, train, val, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	// Save with a context that outlives a SIGINT: stopping must not lose work.
	saveCtx := context.WithoutCancel(ctx)
	switch {
	case res.Stopped == fit.StopInterrupted:
		if err := m.Save(saveCtx, out); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "kerasgo train: interrupted after %d steps; saved the weights reached so far to %s\n", res.Steps, out)
		if gate != nil {
			return fmt.Errorf("interrupted: nothing promoted to %s", f.into)
		}
		return nil
	case res.BestEpoch >= 0:
		if err := fit.WriteRecord(opts.BestDir, res); err != nil {
			return err
		}
		if err := atomicfile.ReplaceDir(opts.BestDir, out); err != nil {
			return err
		}
	default:
		if err := m.Save(saveCtx, out); err != nil {
			return err
		}
		if err := fit.WriteRecord(out, res); err != nil {
			return err
		}
	}
	os.RemoveAll(checkpointDir)
	os.Remove(statePath)
	fmt.Fprintf(env.Stdout, "\ntraining %s after %d epochs (%d steps)", res.Stopped, len(res.History), res.Steps)
	switch {
	case res.BestEpoch == 0:
		fmt.Fprintf(env.Stdout, "; no epoch beat the model as loaded on %s (%.4f), so %s holds the model as loaded\n", opts.Monitor, res.BestValue, f.out)
	case res.BestEpoch > 0:
		fmt.Fprintf(env.Stdout, "; saved epoch %d's weights (best %s %.4f) to %s\n", res.BestEpoch, opts.Monitor, res.BestValue, f.out)
	default:
		fmt.Fprintf(env.Stdout, "; saved to %s\n", f.out)
	}
	if f.plot != "" {
		if err := learningcurve.Save(f.plot, learningcurve.FromHistory(res.Start, res.History)); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "learning curves: %s\n", f.plot)
	}
	eval, trainRep, what := res.Kept()
	fmt.Fprintf(env.Stdout, "\n== evaluation on the %s\n", what)
	in := metrics.Inputs{Train: trainRep, History: res.MetricsHistory()}
	if eval.Rows > 0 && res.Start != nil && trainRep != nil {
		in.Start = res.Start // the same validation rows, before the first step
	}
	if err := eval.WriteText(env.Stdout, metrics.Diagnose(eval, in)); err != nil {
		return err
	}
	if gate == nil {
		return nil
	}
	return gate.decide(env, res, eval, out)
}

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
func startLine(r metrics.Report, opts fit.Options) string {
	return fmt.Sprintf("epoch 0/%d (the model as loaded): val loss %.4f (%s, macro F1 %.3f)", opts.Epochs, r.Loss, reportHead(r), r.MacroF1)
}

func reportHead(r metrics.Report) string {
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
