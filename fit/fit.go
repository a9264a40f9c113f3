// Package fit is kerasgo's training loop: it streams labelled rows from disk
// in shuffled sparse batches through a model's exported training step, for
// as many epochs as asked, evaluates on held-out rows after each epoch, and
// stops early, checkpoints and resumes.
//
// It has no cgo: the model is the Model interface (*kerasgo.Model is one),
// so the loop is tested with fakes. kerasgo's Model.Train runs this loop
// and owns what surrounds it: the best weights' directory, the checkpoint,
// the save and the training record.
package fit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/kerasgo/kerasgo/atomicfile"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/rowio"
)

// Model is what the loop trains.
type Model interface {
	// TrainBatch runs one optimizer step and returns the batch loss and the
	// training-mode probabilities.
	TrainBatch(ctx context.Context, b Batch) (float64, dense.Matrix, error)
	// EvaluateBatch returns the loss and probabilities without training.
	EvaluateBatch(ctx context.Context, b Batch) (float64, dense.Matrix, error)
	// Save writes the current weights as a model directory, atomically.
	Save(ctx context.Context, dir string) error
}

// Options configure Run. Dim and Labels are required.
type Options struct {
	Dim    int          // features per row
	Labels *LabelParser // classes and label mode
	// Loss is the model's Keras loss class name, for the metrics' baselines.
	Loss      evaluation.Loss
	Epochs    int // default 1
	BatchSize int // default 500
	// Every epoch visits the training rows in a new uniformly random order
	// (drawn from Seed and the epoch number), as Keras' fit(shuffle=True)
	// does, whatever the order of the file. KeepOrder visits them in file
	// order instead.
	KeepOrder bool
	Seed      uint64
	// The rows are read and parsed once, before the first step. MemoryBudget
	// (default DefaultMemoryBudget) bounds the bytes of parsed rows kept in
	// memory; past it they move to an unlinked temporary file in TempDir
	// (default os.TempDir()).
	MemoryBudget int64
	TempDir      string
	// ValidationSplit holds out this fraction of the training rows (the same
	// rows every epoch, at random positions) when no validation source is
	// given.
	ValidationSplit float64
	// ClassWeights, when set, weight each row by its class (see ClassWeights).
	// BalanceClasses computes them from the training rows' class counts
	// instead ("balanced", as scikit-learn and Keras users compute them).
	ClassWeights   []float32
	BalanceClasses bool
	// Monitor (default ValLoss) and Patience drive early stopping: stop
	// after Patience epochs without improvement (0: never stop early). The
	// best epoch's weights by Monitor are kept in BestDir whenever validation
	// data exists (Model.Save to it each time an epoch improves; empty: not
	// kept). kerasgo's Model.Train sets BestDir and CheckpointDir itself.
	Monitor  Metric
	Patience int
	BestDir  string
	// CheckpointEvery saves the model to CheckpointDir (and the loop state to
	// StatePath(CheckpointDir)) every so many steps; 0 disables.
	CheckpointEvery int
	CheckpointDir   string
	// Resume continues from a saved State: the model must already hold the
	// checkpoint's weights.
	Resume *State
	// Threshold for multi-label metrics; default 0.5.
	Threshold float32
	// OnData, OnStart, OnStep and OnEpoch report progress; each may be nil.
	// OnData is called once the rows are read, OnStart with the evaluation
	// of the model as loaded (when there is validation data and the run is
	// not resumed).
	OnData  func(Data)
	OnStart func(evaluation.Report)
	OnStep  func(epoch, step int, loss float64)
	OnEpoch func(Epoch)
	// TrainPath and ValPath name the training and validation data in errors.
	TrainPath, ValPath string

	// createTemp replaces os.CreateTemp in tests that need a full disk.
	createTemp func(dir, pattern string) (spillFile, error)
}

// Epoch is one epoch's outcome.
type Epoch struct {
	Epoch     int                `json:"epoch"` // 1-based
	Steps     int                `json:"steps"`
	TrainLoss float64            `json:"train_loss"`
	Train     evaluation.Report  `json:"train"`
	Val       *evaluation.Report `json:"val,omitempty"`
}

// Monitored returns the epoch's validation value of metric (NaN without
// validation data).
func (e Epoch) Monitored(metric Metric) float64 {
	if e.Val == nil {
		return math.NaN()
	}
	return metric.Value(*e.Val)
}

// State is what a checkpoint records to resume from.
type State struct {
	Epoch     int                `json:"epoch"` // 1-based epoch in progress
	Step      int                `json:"step"`  // steps done in it
	History   []Epoch            `json:"history"`
	Start     *evaluation.Report `json:"start,omitempty"`
	BestEpoch int                `json:"best_epoch"`
	BestValue float64            `json:"best_value"`
}

// Result is what Run did.
type Result struct {
	History []Epoch
	// Data describes the rows read.
	Data Data
	// Start is the validation report of the model as loaded, before any
	// step (nil without validation data, or when resumed without one).
	Start *evaluation.Report
	// BestEpoch is the epoch whose weights are in BestDir, and BestValue its
	// monitored value: 0 is the model as loaded, kept when no epoch beat it;
	// -1 means no weights were kept (no validation data or no BestDir).
	BestEpoch int
	BestValue float64
	// Stopped says why training ended.
	Stopped StopReason
	Steps   int
}

// StopReason says why Run returned without an error. Its text is meant for
// people ("training completed after 3 epochs").
type StopReason string

// Reasons training stops.
const (
	// StopCompleted: every epoch ran.
	StopCompleted StopReason = "completed"
	// StopEarly: the monitored quantity did not improve for Patience epochs.
	StopEarly StopReason = "early stopping"
	// StopInterrupted: the context was canceled; the model holds the weights
	// of the last finished step.
	StopInterrupted StopReason = "interrupted"
)

func (o Options) withDefaults() (Options, error) {
	if o.Epochs == 0 {
		o.Epochs = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = 500
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.Monitor == "" {
		o.Monitor = ValLoss
	}
	if _, err := ParseMetric(string(o.Monitor)); err != nil {
		return o, fmt.Errorf("monitor: %w", err)
	}
	switch {
	case o.Dim <= 0 || o.Labels == nil || len(o.Labels.Classes) == 0:
		return o, errors.New("training needs the feature count and the classes")
	case o.Epochs < 0 || o.BatchSize < 0 || o.Patience < 0 || o.CheckpointEvery < 0:
		return o, errors.New("epochs, batch size, patience and checkpoint interval must not be negative")
	case o.MemoryBudget < 0:
		return o, errors.New("memory budget must not be negative")
	case o.ValidationSplit < 0 || o.ValidationSplit >= 1:
		return o, fmt.Errorf("validation split %v, want 0 <= split < 1", o.ValidationSplit)
	case o.CheckpointEvery > 0 && o.CheckpointDir == "":
		return o, errors.New("checkpoints need a directory")
	case o.ClassWeights != nil && len(o.ClassWeights) != len(o.Labels.Classes):
		return o, fmt.Errorf("%d class weights for %d classes", len(o.ClassWeights), len(o.Labels.Classes))
	case o.ClassWeights != nil && o.BalanceClasses:
		return o, errors.New("give class weights or ask for balanced ones, not both")
	}
	return o, nil
}

// Run trains m on the rows train yields; val (may be nil) yields validation
// rows, else ValidationSplit holds some out. Both are read once, before the
// first step. With validation data, the model as loaded is evaluated first
// and counts as a candidate for the best weights, so training never hands
// back a model worse on validation than the one it was given (with BestDir
// set). It returns when the epochs are done, early stopping fires, ctx is
// canceled (Stopped is StopInterrupted, no error), or an error occurs.
func Run(ctx context.Context, m Model, train, val Source, opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, fmt.Errorf("training: %w", err)
	}
	res := Result{Stopped: StopCompleted, BestEpoch: -1}
	// stop ends the run on err: a canceled context is an interruption, with
	// the result so far and no error.
	stop := func(err error) (Result, error) {
		if isCanceled(err) {
			res.Stopped = StopInterrupted
			return res, nil
		}
		return res, err
	}
	data, err := load(ctx, train, val, opts)
	if err != nil {
		return stop(err)
	}
	defer data.close()
	res.Data = data.info
	if opts.OnData != nil {
		opts.OnData(data.info)
	}
	if opts.BalanceClasses {
		opts.ClassWeights = ClassWeights(data.info.ClassCounts)
	}
	hasVal := data.val != nil
	firstEpoch, skip := 1, 0
	best, haveBest := 0.0, false
	sinceBest := 0
	keep := func(epoch int, v float64) error {
		best, haveBest, sinceBest = v, true, 0
		if opts.BestDir == "" {
			return nil
		}
		if err := m.Save(context.WithoutCancel(ctx), opts.BestDir); err != nil {
			return fmt.Errorf("keeping the best weights: %w", err)
		}
		res.BestEpoch, res.BestValue = epoch, v
		return nil
	}
	if r := opts.Resume; r != nil {
		firstEpoch, skip = r.Epoch, r.Step
		res.History = append(res.History, r.History...)
		res.Start = r.Start
		res.BestEpoch, res.BestValue = r.BestEpoch, r.BestValue
		best, haveBest = r.BestValue, r.BestEpoch >= 0
		for _, e := range res.History {
			if haveBest && e.Epoch > r.BestEpoch {
				sinceBest++
			}
		}
	} else if hasVal {
		rep, err := evaluateStore(ctx, m, data.val, opts)
		if err != nil {
			return stop(err)
		}
		res.Start = &rep
		if opts.OnStart != nil {
			opts.OnStart(rep)
		}
		if err := keep(0, opts.Monitor.Value(rep)); err != nil {
			return res, err
		}
	}
	for epoch := firstEpoch; epoch <= opts.Epochs; epoch++ {
		ep, err := runEpoch(ctx, m, data.train, opts, epoch, skip, &res)
		skip = 0
		if err != nil {
			return stop(err)
		}
		if hasVal {
			rep, err := evaluateStore(ctx, m, data.val, opts)
			if err != nil {
				return stop(err)
			}
			ep.Val = &rep
		}
		res.History = append(res.History, ep)
		if opts.OnEpoch != nil {
			opts.OnEpoch(ep)
		}
		if !hasVal {
			continue
		}
		v := ep.Monitored(opts.Monitor)
		if !haveBest || opts.Monitor.Improvement(best, v) > 0 {
			if err := keep(epoch, v); err != nil {
				return res, err
			}
		} else {
			sinceBest++
		}
		if opts.Patience > 0 && sinceBest >= opts.Patience && epoch < opts.Epochs {
			res.Stopped = StopEarly
			return res, nil
		}
	}
	return res, nil
}

// drain stops a batch stream and waits for its goroutine to end, so that
// the store it reads can be closed.
func drain(stop context.CancelFunc, batches <-chan batchOrErr) {
	stop()
	for range batches {
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// runEpoch trains one pass over the training rows in the epoch's order,
// skipping the first skip batches (resume).
func runEpoch(ctx context.Context, m Model, train *rowStore, opts Options, epoch, skip int, res *Result) (Epoch, error) {
	ep := Epoch{Epoch: epoch}
	acc, err := newAccumulator(opts)
	if err != nil {
		return ep, err
	}
	order := permutation(train.rows(), opts.Seed, epoch, opts.KeepOrder)
	b := &batcher{dim: opts.Dim, classes: len(opts.Labels.Classes), weights: opts.ClassWeights}
	streamCtx, stop := context.WithCancel(ctx)
	batches := streamBatches(streamCtx, train, order, min(skip*opts.BatchSize, train.rows()), b, opts.BatchSize)
	defer drain(stop, batches)
	var lossSum float64
	var lossRows int
	step := skip
	for it := range batches {
		if it.err != nil {
			return ep, it.err
		}
		if err := ctx.Err(); err != nil {
			return ep, err
		}
		batch := it.b
		step++
		loss, probs, err := m.TrainBatch(ctx, batch)
		if err != nil {
			return ep, err
		}
		if err := acc.Add(probs, batch.Y, loss); err != nil {
			return ep, err
		}
		lossSum += loss * float64(batch.X.Rows)
		lossRows += batch.X.Rows
		res.Steps++
		if opts.OnStep != nil {
			opts.OnStep(epoch, step, loss)
		}
		if opts.CheckpointEvery > 0 && res.Steps%opts.CheckpointEvery == 0 {
			st := State{Epoch: epoch, Step: step, History: res.History, Start: res.Start, BestEpoch: res.BestEpoch, BestValue: res.BestValue}
			if err := checkpoint(ctx, m, opts, st); err != nil {
				return ep, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return ep, err
	}
	ep.Steps = step
	if lossRows > 0 {
		ep.TrainLoss = lossSum / float64(lossRows)
	}
	ep.Train = acc.Report()
	ep.Train.Loss = ep.TrainLoss
	return ep, nil
}

// evaluateStore scores every stored validation row, in stored order.
func evaluateStore(ctx context.Context, m Model, val *rowStore, opts Options) (evaluation.Report, error) {
	acc, err := newAccumulator(opts)
	if err != nil {
		return evaluation.Report{}, err
	}
	streamCtx, stop := context.WithCancel(ctx)
	b := &batcher{dim: opts.Dim, classes: len(opts.Labels.Classes)}
	batches := streamBatches(streamCtx, val, nil, 0, b, opts.BatchSize)
	defer drain(stop, batches)
	var lossSum float64
	rows := 0
	for it := range batches {
		if it.err != nil {
			return evaluation.Report{}, it.err
		}
		loss, probs, err := m.EvaluateBatch(ctx, it.b)
		if err != nil {
			return evaluation.Report{}, err
		}
		lossSum += loss * float64(it.b.X.Rows)
		rows += it.b.X.Rows
		if err := acc.Add(probs, it.b.Y, loss); err != nil {
			return evaluation.Report{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return evaluation.Report{}, err
	}
	rep := acc.Report()
	rep.Loss = lossSum / float64(rows)
	return rep, nil
}

// evaluate streams every row of src through m once.
func evaluate(ctx context.Context, m Model, src Source, path string, opts Options) (evaluation.Report, error) {
	acc, err := newAccumulator(opts)
	if err != nil {
		return evaluation.Report{}, err
	}
	r, closer, err := src()
	if err != nil {
		return evaluation.Report{}, fmt.Errorf("opening validation data: %w", err)
	}
	defer closer.Close()
	b := &batcher{dim: opts.Dim, classes: len(opts.Labels.Classes)}
	var lossSum float64
	rows := 0
	flush := func() error {
		batch := b.take()
		loss, probs, err := m.EvaluateBatch(ctx, batch)
		if err != nil {
			return err
		}
		lossSum += loss * float64(batch.X.Rows)
		rows += batch.X.Rows
		return acc.Add(probs, batch.Y, loss)
	}
	err = forEachExample(ctx, r, opts.Labels, path, func(_ int, e Example) error {
		b.add(e)
		if b.rows() == opts.BatchSize {
			return flush()
		}
		return nil
	})
	if err != nil {
		return evaluation.Report{}, err
	}
	if b.rows() > 0 {
		if err := flush(); err != nil {
			return evaluation.Report{}, err
		}
	}
	if rows == 0 {
		return evaluation.Report{}, fmt.Errorf("%s: no validation rows", path)
	}
	rep := acc.Report()
	rep.Loss = lossSum / float64(rows)
	return rep, nil
}

// Evaluate scores every row of src with m and returns the metrics: the
// evaluation `kerasgo evaluate` prints.
func Evaluate(ctx context.Context, m Model, src Source, opts Options) (evaluation.Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return evaluation.Report{}, fmt.Errorf("evaluating: %w", err)
	}
	return evaluate(ctx, m, src, opts.ValPath, opts)
}

func newAccumulator(opts Options) (*evaluation.Accumulator, error) {
	return evaluation.NewAccumulator(evaluation.Options{
		Classes: opts.Labels.Classes, MultiLabel: opts.Labels.MultiLabel, Threshold: opts.Threshold, Loss: opts.Loss,
	})
}

// forEachExample reads rows until EOF, parsing labels, and calls fn with the
// row's 0-based position and the example.
func forEachExample(ctx context.Context, r rowio.RowReader, labels *LabelParser, path string, fn func(int, Example) error) error {
	var row rowio.Row
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := r.Read(&row)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		e, err := labels.example(path, &row)
		if err != nil {
			return err
		}
		if err := fn(i, e); err != nil {
			return err
		}
	}
}

// checkpoint saves the model, then the loop state beside it.
func checkpoint(ctx context.Context, m Model, opts Options, st State) error {
	if err := m.Save(context.WithoutCancel(ctx), opts.CheckpointDir); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return WriteState(StatePath(opts.CheckpointDir), st)
}

// StatePath is where the loop state of the checkpoint in dir is kept,
// beside it: dir + ".state.json".
func StatePath(checkpointDir string) string { return checkpointDir + ".state.json" }

// WriteState writes a checkpoint's state file atomically.
func WriteState(path string, st State) error { return atomicfile.WriteJSON(path, st) }

// ReadState reads a checkpoint's state file.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("reading checkpoint state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("parsing checkpoint state %s: %w", path, err)
	}
	return st, nil
}

// MetricsHistory returns the epochs in the form evaluation.Diagnose reads.
func (r Result) MetricsHistory() []evaluation.HistoryEntry {
	out := make([]evaluation.HistoryEntry, 0, len(r.History))
	for _, e := range r.History {
		me := evaluation.HistoryEntry{TrainLoss: e.TrainLoss, ValLoss: math.NaN(), ValMetric: math.NaN()}
		if e.Val != nil {
			me.ValLoss, me.ValMetric = e.Val.Loss, e.Val.MacroF1
		}
		out = append(out, me)
	}
	return out
}

// Kept returns the evaluation that describes the model training hands back,
// the same model's report on its training rows (nil when not known) and a
// description of both: with validation data the kept epoch's (or the model
// as loaded, when no epoch beat it), else the last epoch's on the training
// rows.
func (r Result) Kept() (eval evaluation.Report, train *evaluation.Report, what string) {
	if len(r.History) == 0 {
		if r.Start != nil {
			return *r.Start, nil, "validation data, the model as loaded"
		}
		return evaluation.Report{}, nil, "no data"
	}
	last := r.History[len(r.History)-1]
	switch {
	case r.BestEpoch == 0 && r.Start != nil:
		return *r.Start, nil, "validation data, the model as loaded (saved)"
	case r.BestEpoch > 0 && r.BestEpoch <= len(r.History) && r.History[r.BestEpoch-1].Val != nil:
		best := r.History[r.BestEpoch-1]
		return *best.Val, &best.Train, fmt.Sprintf("validation data, epoch %d (saved)", best.Epoch)
	case last.Val != nil:
		return *last.Val, &last.Train, "validation data, last epoch"
	}
	return last.Train, nil, "training data (no validation data given)"
}
