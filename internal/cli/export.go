package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/scripts"
	"github.com/kerasgo/kerasgo/tfmodel"
)

type exportFlags struct {
	arch, from, out, classNames, loss, optimizer, python string
	validationData                                       string
	vectorizer, tokenizer, tokenizerMode                 string
	inputDim, classes, seed                              int
	multiLabel                                           bool
	learningRate                                         float64
	optimizerState                                       tfmodel.OptimizerStateMode // "": the source format's default
}

func exportCommand() *Command {
	return &Command{
		Name:      "export",
		UsageLine: "kerasgo export (--arch question --input-dim D --classes C | --from FILE) --out DIR [flags]",
		Short:     "turn a Keras model into a SavedModel kerasgo can predict with and train",
		Long: `Export runs kerasgo's Keras exporter (scripts/export_keras.py, built into
this binary) with the Python interpreter of the cached TensorFlow virtualenv
that scripts/setup_tf.sh made. It writes a SavedModel with the signatures
serving_default, train_step, evaluate_step, set_learning_rate and get_weights,
plus assets/kerasgo.json (input and output keys, classes, label mode, loss,
optimizer, versions).

--arch question builds the model of the question kerasgo started from:
Input(D) -> Dense(500, relu) -> Dense(250, relu) -> Dense(C, sigmoid), binary
cross-entropy, Adam. --from ports a .keras file, an .h5 file (Keras 3 or
Keras 2) or a Keras 2 SavedModel directory (tf_keras model.save("dir")),
keeping its compiled loss and optimizer unless --loss/--optimizer/
--learning-rate say otherwise.

The saved optimizer state (moments, iteration count) is treated as the Keras
that wrote the file treats it when its user calls load_model and fit: kept
for a .keras file (Keras 3) and a tf_keras .h5 file; reset for a Keras 2
SavedModel directory (tf_keras starts the optimizer afresh) and a Keras 3
.h5 file (Keras 3 cannot train on from it). --optimizer-state keep|reset
overrides; the metadata, the export summary and kerasgo inspect say which
applies and why. A built-in learning-rate schedule (ExponentialDecay,
CosineDecay with or without warm-up, CosineDecayRestarts,
PiecewiseConstantDecay, InverseTimeDecay, PolynomialDecay) is carried into
the train steps at the optimizer's iteration count; --learning-rate (or
kerasgo train --learning-rate) replaces it with a constant. Optimizer
settings kerasgo cannot carry (use_ema, loss scaling, custom schedules or
optimizers) fail the export with a one-line error naming them; --verbose
adds the exporter's Python traceback.

The interpreter is --python, else $KERASGO_PYTHON, else the virtualenv under
$KERASGO_CACHE (default ~/.cache/kerasgo).`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &exportFlags{}
			fs.StringVar(&f.arch, "arch", "", "build a known architecture: question")
			fs.StringVar(&f.from, "from", "", "a .keras file, an .h5 file or a Keras 2 SavedModel directory to port")
			fs.IntVar(&f.inputDim, "input-dim", 0, "features per row (with --arch)")
			fs.IntVar(&f.classes, "classes", 0, "number of classes (with --arch)")
			fs.BoolVar(&f.multiLabel, "multi-label", false, "labels are multi-hot: several classes per row")
			fs.StringVar(&f.out, "out", "", "directory to write the SavedModel to (required)")
			fs.StringVar(&f.validationData, "validation-data", "", "labelled rows (libsvm or JSONL) to record the model's class mix on, which kerasgo serve compares its traffic with (kerasgo train records it itself)")
			fs.IntVar(&f.seed, "seed", 0, "random seed; the export is deterministic given it")
			fs.StringVar(&f.classNames, "class-names", "", "file with one class name a line")
			fs.StringVar(&f.loss, "loss", "", "override the loss (a Keras loss name)")
			fs.StringVar(&f.optimizer, "optimizer", "", "override the optimizer (a Keras optimizer name)")
			fs.Float64Var(&f.learningRate, "learning-rate", 0, "override the learning rate (replaces a schedule with this constant)")
			fs.Var(&f.optimizerState, "optimizer-state", "keep or reset the saved optimizer moments and iteration count (default: what the file's Keras does on load_model + fit)")
			fs.StringVar(&f.python, "python", "", "Python interpreter with TensorFlow and Keras")
			fs.StringVar(&f.tokenizer, "tokenizer", "", "a legacy keras.preprocessing.text.Tokenizer's to_json() file to store with the model")
			fs.StringVar(&f.tokenizerMode, "tokenizer-mode", "binary", "the texts_to_matrix mode the model was trained with: binary, count, freq or tfidf")
			fs.StringVar(&f.vectorizer, "vectorizer", "", "a fitted TextVectorization to store with the model (its JSON, or a .keras file holding it), so kerasgo scores raw text")
			return f.run
		},
	}
}

func (f *exportFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	if (f.arch == "") == (f.from == "") {
		return usagef("give exactly one of --arch and --from")
	}
	if f.out == "" {
		return usagef("--out is required")
	}
	python, err := findPython(env, f.python)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kerasgo-export-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(tmp, "export_keras.py")
	if err := os.WriteFile(script, scripts.ExportKeras, 0o600); err != nil {
		return fmt.Errorf("export: writing the exporter: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "tfquiet.py"), scripts.TFQuiet, 0o600); err != nil {
		return fmt.Errorf("export: writing the exporter: %w", err)
	}
	argv := []string{script, "--out", f.out, "--seed", strconv.Itoa(f.seed)}
	if f.arch != "" {
		argv = append(argv, "--arch", f.arch, "--input-dim", strconv.Itoa(f.inputDim), "--classes", strconv.Itoa(f.classes))
	} else {
		argv = append(argv, "--from", f.from)
	}
	if f.multiLabel {
		argv = append(argv, "--multi-label")
	}
	if f.tokenizer != "" {
		argv = append(argv, "--tokenizer", f.tokenizer, "--tokenizer-mode", f.tokenizerMode)
	}
	for flag, v := range map[string]string{"--class-names": f.classNames, "--loss": f.loss, "--optimizer": f.optimizer, "--vectorizer": f.vectorizer} {
		if v != "" {
			argv = append(argv, flag, v)
		}
	}
	if f.optimizerState != "" {
		argv = append(argv, "--optimizer-state", string(f.optimizerState))
	}
	if f.learningRate != 0 {
		argv = append(argv, "--learning-rate", strconv.FormatFloat(f.learningRate, 'g', -1, 64))
	}
	cmd := exec.CommandContext(ctx, python, argv...)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	cmd.Env = os.Environ()
	if env.Verbose {
		cmd.Env = append(cmd.Env, "KERASGO_VERBOSE=1")
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("export: %s failed: %w", python, err)
	}
	if f.validationData != "" {
		return recordClassMix(ctx, env, f.out, f.validationData)
	}
	return nil
}

// recordClassMix evaluates the model in dir on labelled data and records
// the class mix of those rows and of its predictions on them
// (evaluation.ClassMix), which kerasgo serve compares its traffic with.
func recordClassMix(ctx context.Context, env *Env, dir, data string) error {
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		return err
	}
	defer m.Close()
	src, err := labelledSource(env, m, data, "")
	if err != nil {
		return err
	}
	model, opts, _, err := m.Evaluator(ctx, src)
	if err != nil {
		return err
	}
	opts.ValPath = data
	rep, err := fit.Evaluate(ctx, model, src, opts)
	if err != nil {
		return err
	}
	if err := evaluation.MixOf(rep, "kerasgo export: "+filepath.Base(data)).Write(dir); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "recorded the class mix of %d rows of %s for kerasgo serve's traffic findings\n", rep.Rows, data)
	return nil
}

// findPython locates the interpreter of the TensorFlow virtualenv.
func findPython(env *Env, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := env.Getenv("KERASGO_PYTHON"); p != "" {
		return p, nil
	}
	cache := env.Getenv("KERASGO_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the Python virtualenv: %w", err)
		}
		cache = filepath.Join(home, ".cache", "kerasgo")
	}
	p := filepath.Join(cache, "venv-tf"+scripts.TensorFlowVersion(), "bin", "python")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no Python virtualenv at %s: run scripts/setup_tf.sh (or `make build`), or pass --python", p)
	}
	return p, nil
}
