package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/internal/atomicfile"
	"github.com/kerasgo/kerasgo/internal/learningcurve"
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
}

func trainCommand() *Command {
	return &Command{
		Name:      "train",
		UsageLine: "kerasgo train MODEL_DIR --data FILE --out NEW_DIR [flags]",
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
N steps; --resume continues from it. --plot draws the learning curves.`,
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
		if opts.ClassWeights, err = readClassWeights(f.classWeight, opts.Labels); err != nil {
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
	case res.Stopped == "interrupted":
		if err := m.Save(saveCtx, out); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "kerasgo train: interrupted after %d steps; saved the weights reached so far to %s\n", res.Steps, out)
		return nil
	case res.BestEpoch >= 0:
		if err := writeTrainingRecord(opts.BestDir, res); err != nil {
			return err
		}
		if err := atomicfile.ReplaceDir(opts.BestDir, out); err != nil {
			return err
		}
	default:
		if err := m.Save(saveCtx, out); err != nil {
			return err
		}
		if err := writeTrainingRecord(out, res); err != nil {
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
		if err := learningcurve.Save(f.plot, curves(res.Start, res.History)); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "learning curves: %s\n", f.plot)
	}
	// The evaluation block describes the model saved: the best epoch's (or
	// the model as loaded) with validation data, else the last epoch's on the
	// training data.
	last := res.History[len(res.History)-1]
	eval, what := last.Train, "training data (no validation data given)"
	var trainRep *metrics.Report
	switch {
	case res.BestEpoch == 0 && res.Start != nil:
		eval, what = *res.Start, "validation data, the model as loaded (saved)"
	case res.BestEpoch > 0 && res.BestEpoch <= len(res.History) && res.History[res.BestEpoch-1].Val != nil:
		best := res.History[res.BestEpoch-1]
		eval, what, trainRep = *best.Val, fmt.Sprintf("validation data, epoch %d (saved)", best.Epoch), &best.Train
	case last.Val != nil:
		eval, what, trainRep = *last.Val, "validation data, last epoch", &last.Train
	}
	fmt.Fprintf(env.Stdout, "\n== evaluation on the %s\n", what)
	in := metrics.Inputs{Train: trainRep, History: history(res.History)}
	if eval.Rows > 0 && res.Start != nil && trainRep != nil {
		in.Start = res.Start // the same validation rows, before the first step
	}
	return eval.WriteText(env.Stdout, metrics.Diagnose(eval, in))
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

func history(h []fit.Epoch) []metrics.Epoch {
	out := make([]metrics.Epoch, 0, len(h))
	for _, e := range h {
		me := metrics.Epoch{TrainLoss: e.TrainLoss, ValLoss: math.NaN(), ValMetric: math.NaN()}
		if e.Val != nil {
			me.ValLoss, me.ValMetric = e.Val.Loss, e.Val.MacroF1
		}
		out = append(out, me)
	}
	return out
}

// curves are the learning-curve panels of a training run: loss, the accuracy
// that fits the task and binary accuracy, from epoch 0 (start, the model as
// loaded, when it was evaluated) on, each with the score of a model that
// learned nothing as a horizontal line: the prior loss, the majority (or
// empty-set) accuracy, and the binary accuracy of predicting no class.
func curves(start *metrics.Report, h []fit.Epoch) []learningcurve.Panel {
	n := len(h) + 1
	series := func() []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.NaN()
		}
		return v
	}
	trainLoss, valLoss := series(), series()
	trainAcc, valAcc := series(), series()
	trainBin, valBin := series(), series()
	var ref *metrics.Report // whose baselines are drawn: validation, else training
	if start != nil {
		valLoss[0], valBin[0] = start.Loss, start.BinaryAccuracy
		valAcc[0], _ = start.ExactAccuracy()
		ref = start
	}
	for _, e := range h {
		if e.Epoch < 1 || e.Epoch >= n {
			continue
		}
		trainLoss[e.Epoch], trainBin[e.Epoch] = e.TrainLoss, e.Train.BinaryAccuracy
		trainAcc[e.Epoch], _ = e.Train.ExactAccuracy()
		if e.Val != nil {
			valLoss[e.Epoch], valBin[e.Epoch] = e.Val.Loss, e.Val.BinaryAccuracy
			valAcc[e.Epoch], _ = e.Val.ExactAccuracy()
			ref = e.Val
		} else if ref == nil {
			ref = &e.Train
		}
	}
	accName, baseName := "top-1 accuracy", "always the majority class"
	if ref != nil && ref.MultiLabel {
		accName, baseName = "subset accuracy", "predicting no label"
	}
	var lossBase, accBase, binBase []learningcurve.Baseline
	if ref != nil {
		b, _ := ref.ExactBaseline()
		lossBase = []learningcurve.Baseline{{Name: "predicting class frequencies", Value: ref.Baselines.PriorLoss}}
		accBase = []learningcurve.Baseline{{Name: baseName, Value: b}}
		binBase = []learningcurve.Baseline{{Name: fmt.Sprintf("predicting no class (1 − %s/%d)", labelsPerRow(*ref), len(ref.Classes)), Value: ref.Baselines.AllZerosBinaryAccuracy}}
	}
	pair := func(train, val []float64) []learningcurve.Series {
		return []learningcurve.Series{{Name: "train", Values: train}, {Name: "validation", Values: val}}
	}
	return []learningcurve.Panel{
		{Title: "loss", YLabel: "loss", Series: pair(trainLoss, valLoss), Baselines: lossBase},
		{Title: accName, YLabel: accName, Series: pair(trainAcc, valAcc), Baselines: accBase},
		{Title: "binary accuracy (Keras ≤ 2.3's \"accuracy\")", YLabel: "binary accuracy", Series: pair(trainBin, valBin), Baselines: binBase},
	}
}

// labelsPerRow formats the mean labels per row of a report ("1" for
// single-label data).
func labelsPerRow(r metrics.Report) string {
	if !r.MultiLabel || r.Rows == 0 {
		return "1"
	}
	total := 0
	for _, k := range r.Baselines.ClassCounts {
		total += k
	}
	return strconv.FormatFloat(float64(total)/float64(r.Rows), 'f', 2, 64)
}

// trainingFile is where train records its run in the model it saves, so that
// evaluate --report can draw the curves: assets/ travels with the model.
const trainingFile = "kerasgo-training.json"

// trainingRecord is what trainingFile holds.
type trainingRecord struct {
	Start  *metrics.Report `json:"start,omitempty"`
	Epochs []fit.Epoch     `json:"epochs"`
}

// writeTrainingRecord writes the run's history into dir/assets.
func writeTrainingRecord(dir string, res fit.Result) error {
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		return err
	}
	f, err := atomicfile.Create(filepath.Join(dir, "assets", trainingFile))
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := json.NewEncoder(f).Encode(trainingRecord{Start: res.Start, Epochs: res.History}); err != nil {
		return fmt.Errorf("writing the training record: %w", err)
	}
	return f.Commit()
}

// readTrainingRecord reads the history train recorded in a model, if any.
func readTrainingRecord(dir string) (*trainingRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, "assets", trainingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec trainingRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "assets", trainingFile), err)
	}
	return &rec, nil
}

// readClassWeights reads "class weight" lines (class name or index).
func readClassWeights(path string, labels *fit.Labels) ([]float32, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("--class-weight %q: want auto or an existing file", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w := make([]float32, len(labels.Classes))
	for i := range w {
		w[i] = 1
	}
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(msg string) error {
			return &convert.ParseError{Path: path, Line: line, Err: fmt.Errorf("%s: %w", msg, convert.ErrFormat)}
		}
		if len(fields) != 2 {
			return nil, bad(`want "class weight"`)
		}
		classes, err := labels.Parse(fields[:1])
		if err != nil {
			return nil, bad(err.Error())
		}
		v, err := strconv.ParseFloat(fields[1], 32)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, bad(fmt.Sprintf("weight %q is not a non-negative number", fields[1]))
		}
		w[classes[0]] = float32(v)
	}
	return w, s.Err()
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
