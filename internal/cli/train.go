package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/internal/learningcurve"
)

type trainFlags struct {
	data, valData, out, classWeight, plot string
	labels                                string
	memoryBudget                          string
	monitor                               fit.Metric
	valSplit, learningRate                float64
	epochs, batchSize, patience           int
	checkpointEvery                       int
	resume, shuffle                       bool
	seed                                  uint64
	// Gated promotion into a TF Serving base path (--into).
	into, modelConfig string
	promoteIf         fit.Metric
	minImprovement    float64
	keep              int
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
			f := &trainFlags{monitor: fit.ValLoss, promoteIf: fit.ValLoss}
			fs.StringVar(&f.data, "data", "", "training data: libsvm, or JSONL with labels, or with --labels request logs (required)")
			fs.StringVar(&f.labels, "labels", "", "a CSV file of id,label rows: --data (and a --validation-data that is not libsvm or JSONL) is then kerasgo serve's request logs (a .tfrecord file, a directory, or a log prefix), whose rows it labels by request id")
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
			fs.Var(&f.monitor, "monitor", "what early stopping and best weights watch: val_loss or val_macro_f1")
			fs.IntVar(&f.checkpointEvery, "checkpoint-every", 0, "save a checkpoint every N steps (0: never)")
			fs.BoolVar(&f.resume, "resume", false, "continue from NEW_DIR.checkpoint")
			fs.StringVar(&f.plot, "plot", "", "write learning curves to FILE.png or FILE.svg")
			fs.StringVar(&f.into, "into", "", "train BASE's highest version and publish the result as BASE's next version only if it is better")
			fs.Var(&f.promoteIf, "promote-if", "with --into: the metric that must improve, val_loss or val_macro_f1")
			fs.Float64Var(&f.minImprovement, "min-improvement", 0, "with --into: how much --promote-if must improve (0: at least as good, and some epoch must beat the served model)")
			fs.IntVar(&f.keep, "keep", 0, "with --into: keep the newest N versions after publishing (0: keep all)")
			fs.StringVar(&f.modelConfig, "model-config", "", "with --into and --keep: the server's model config, whose pinned and labelled versions are never removed")
			fs.Uint64Var(&f.seed, "seed", 0, "shuffling seed")
			return f.run
		},
	}
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
	case f.valData != "" && f.valSplit > 0:
		return usagef("give --validation-data or --validation-split, not both")
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
	if f.into != "" {
		return f.runInto(ctx, env, args)
	}
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	if f.data == "" || f.out == "" {
		return usagef("--data and --out are required")
	}
	if err := f.check(); err != nil {
		return err
	}
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
	var m *kerasgo.Model
	var resume *fit.State
	if f.resume {
		m, resume, err = kerasgo.OpenCheckpoint(ctx, out, kerasgo.DefaultOptions())
		if err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
	} else if m, err = kerasgo.Open(ctx, args[0], kerasgo.DefaultOptions()); err != nil {
		return err
	}
	defer m.Close()
	opts, err := f.fitOptions(ctx, env, m)
	if err != nil {
		return err
	}
	opts.Resume = resume
	_, _, err = f.train(ctx, env, m, out, opts)
	return err
}

// fitOptions are the loop's options from the model's metadata and the
// flags, with --learning-rate applied to the model.
func (f *trainFlags) fitOptions(ctx context.Context, env *Env, m *kerasgo.Model) (fit.Options, error) {
	opts, err := m.FitOptions()
	if err != nil {
		return opts, err
	}
	if f.learningRate > 0 {
		if err := m.SetLearningRate(ctx, f.learningRate); err != nil {
			return opts, err
		}
		if md := m.Runtime().Metadata(); md != nil && md.LearningRateSchedule != nil && md.LearningRateSchedule.ReplacedBy == nil {
			fmt.Fprintf(env.Stdout, "note: --learning-rate %g replaces the model's %s learning-rate schedule with a constant rate\n",
				f.learningRate, md.LearningRateSchedule.ClassName)
		}
	}
	budget, _ := f.budget()
	opts.Epochs, opts.BatchSize, opts.KeepOrder, opts.Seed = f.epochs, f.batchSize, !f.shuffle, f.seed
	opts.MemoryBudget = budget
	opts.ValidationSplit, opts.Monitor, opts.Patience = f.valSplit, f.monitor, f.patience
	opts.CheckpointEvery = f.checkpointEvery
	opts.TrainPath, opts.ValPath = f.data, f.valData
	switch f.classWeight {
	case "":
	case "auto":
		opts.BalanceClasses = true
	default:
		file, err := os.Open(f.classWeight)
		if errors.Is(err, fs.ErrNotExist) {
			return opts, usagef("--class-weight %q: want auto or an existing file", f.classWeight)
		}
		if err != nil {
			return opts, err
		}
		defer file.Close()
		if opts.ClassWeights, err = fit.ReadClassWeights(file, f.classWeight, opts.Labels); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// train runs Model.Train to out with progress lines, then prints where the
// model went, the learning curves and the evaluation block of the model
// kept, which it returns.
func (f *trainFlags) train(ctx context.Context, env *Env, m *kerasgo.Model, out string, opts fit.Options) (fit.Result, evaluation.Report, error) {
	train, err := labelledSource(env, m, f.data, f.labels)
	if err != nil {
		return fit.Result{}, evaluation.Report{}, err
	}
	var val fit.Source
	if f.valData != "" {
		if val, err = labelledSource(env, m, f.valData, f.labels); err != nil {
			return fit.Result{}, evaluation.Report{}, err
		}
	}
	f.report(env, &opts)
	bar := newStepBar(env.Stderr)
	if bar != nil {
		opts.OnStep = func(epoch, step int, loss float64) {
			bar.Describe(fmt.Sprintf("epoch %d/%d step %d loss %.4f", epoch, opts.Epochs, step, loss))
			_ = bar.Add(1)
		}
		onEpoch := opts.OnEpoch
		opts.OnEpoch = func(e fit.Epoch) { _ = bar.Clear(); onEpoch(e) }
	}
	res, err := m.Train(ctx, train, val, out, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return res, evaluation.Report{}, err
	}
	if res.Stopped == fit.StopInterrupted {
		fmt.Fprintf(env.Stderr, "kerasgo train: interrupted after %d steps; saved the weights reached so far to %s\n", res.Steps, out)
		return res, evaluation.Report{}, nil
	}
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
			return res, evaluation.Report{}, err
		}
		fmt.Fprintf(env.Stdout, "learning curves: %s\n", f.plot)
	}
	eval, trainRep, what := res.Kept()
	fmt.Fprintf(env.Stdout, "\n== evaluation on the %s\n", what)
	in := evaluation.Inputs{Train: trainRep, History: res.MetricsHistory()}
	if eval.Rows > 0 && res.Start != nil && trainRep != nil {
		in.Start = res.Start // the same validation rows, before the first step
	}
	return res, eval, eval.WriteText(env.Stdout, evaluation.Diagnose(eval, in))
}
