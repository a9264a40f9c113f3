package beamscore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/filter"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/rowio"
)

func init() {
	// Beam's Go SDK finds DoFns and element types through registration at
	// init time; it is how workers rebuild the pipeline's functions.
	register.Function1x1(filePath)
	register.DoFn3x1[context.Context, string, func(Split), error](&splitFn{})
	register.Emitter1[Split]()
	register.DoFn2x1[context.Context, Split, error](&scoreFn{})
}

// Config is what the pipeline does. It travels to the workers inside the
// DoFns (as JSON), so every path in it must be readable there.
type Config struct {
	// Model is the SavedModel directory (a `kerasgo export`, or any model
	// `kerasgo predict` scores).
	Model string
	// Inputs are file globs (any filesystem Beam has registered: local paths
	// here; gs:// with Beam's gcs package imported).
	Inputs []string
	// Format is the input format: "auto" (by extension), libsvm, jsonl, csv,
	// tsv or text. CSV and TSV must have no header: a range that starts
	// mid-file cannot tell one.
	Format string
	// Output is the prefix of the output files: each range of lines becomes
	// OUTPUT-<file hash>-<first line>.<csv|jsonl>.
	Output string
	// OutputFormat is rowio.OutputCSV (the default) or rowio.OutputJSONL.
	OutputFormat rowio.OutputFormat
	// TopK, when positive, writes only the K most probable classes a row.
	TopK int
	// Threshold is the probability at which a multi-label model predicts a
	// class (default 0.5).
	Threshold float32
	// SkipBadRows writes unreadable rows to a dead-letter file beside the
	// range's output (OUTPUT-<file hash>-<first line>.deadletter.jsonl) and
	// counts them in the "bad_rows" counter, instead of failing the job.
	SkipBadRows bool
	// BatchSize is the number of rows a model call takes (default 500).
	BatchSize int
	// LinesPerSplit is the number of lines a range holds (default 20,000).
	LinesPerSplit int
}

// The names of the pipeline's counters (namespace "kerasgo").
const (
	CounterRows    = "rows"     // rows scored and written
	CounterBadRows = "bad_rows" // rows written to a dead-letter file
)

// withDefaults fills the zero fields and checks the others.
func (c Config) withDefaults() (Config, error) {
	if c.Model == "" {
		return c, errors.New("no model")
	}
	if len(c.Inputs) == 0 {
		return c, errors.New("no input")
	}
	if c.Output == "" {
		return c, errors.New("no output prefix")
	}
	if c.Format == "" {
		c.Format = "auto"
	}
	var err error
	if c.OutputFormat, err = rowio.ParseOutputFormat(string(c.OutputFormat), ""); err != nil {
		return c, err
	}
	if c.Threshold == 0 {
		c.Threshold = 0.5
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.LinesPerSplit == 0 {
		c.LinesPerSplit = 20000
	}
	switch {
	case c.TopK < 0:
		return c, fmt.Errorf("top-k %d: want 0 (every class) or more", c.TopK)
	case c.Threshold <= 0 || c.Threshold > 1:
		return c, fmt.Errorf("threshold %v: want (0, 1]", c.Threshold)
	case c.BatchSize < 0:
		return c, fmt.Errorf("batch size %d: want > 0", c.BatchSize)
	case c.LinesPerSplit < 0:
		return c, fmt.Errorf("lines per split %d: want > 0", c.LinesPerSplit)
	}
	for _, in := range c.Inputs {
		if _, err := lineFormat(c.Format, in); err != nil {
			return c, err
		}
	}
	return c, nil
}

// lineFormat resolves the format of input and checks it splits by line.
func lineFormat(name, input string) (rowio.Format, error) {
	f, err := rowio.ParseFormat(name, input)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", input, err)
	}
	if f == rowio.FormatNPY {
		return "", fmt.Errorf("input %s: npy does not split by line; score it with kerasgo predict", input)
	}
	return f, nil
}

// Check validates cfg and loads its model once, so that a launcher reports
// a model that does not load, with the loader's error, before the job
// starts rather than once per worker. It needs the model directory to be
// readable where it runs.
func Check(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("beam scoring: %w", err)
	}
	m, err := kerasgo.Open(ctx, cfg.Model, kerasgo.DefaultOptions())
	if err != nil {
		return fmt.Errorf("beam scoring: %w", err)
	}
	defer m.Close()
	for _, in := range cfg.Inputs {
		f, _ := lineFormat(cfg.Format, in)
		if f == rowio.FormatText && !m.TakesText() {
			return fmt.Errorf("beam scoring: input %s is raw text and %s takes no text: %w", in, cfg.Model, kerasgo.ErrNoTextInput)
		}
	}
	return nil
}

// Build adds the scoring of cfg.Inputs to the pipeline at s.
func Build(s beam.Scope, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("beam scoring: %w", err)
	}
	s = s.Scope("kerasgo.score")
	var paths []beam.PCollection
	for _, glob := range cfg.Inputs {
		files := fileio.MatchFiles(s, glob, fileio.MatchEmptyDisallow())
		paths = append(paths, beam.ParDo(s, filePath, files))
	}
	// A file two globs match is scored once.
	files := filter.Distinct(s, beam.Flatten(s, paths...))
	splits := beam.ParDo(s, &splitFn{Config: cfg}, files)
	beam.ParDo0(s, &scoreFn{Config: cfg}, beam.Reshuffle(s, splits))
	return nil
}

// filePath is a matched file's path.
func filePath(f fileio.FileMetadata) string { return f.Path }

// outputName is the name of a range's output file, with ext its extension:
// a 64-bit hash of the input path (two of a million inputs collide with a
// chance of about 3e-8), and the range's first line.
func outputName(prefix string, sp Split, ext string) string {
	h := fnv.New64a()
	h.Write([]byte(sp.Path))
	return fmt.Sprintf("%s-%016x-%09d.%s", prefix, h.Sum64(), sp.FirstLine, ext)
}

// tempName is where a file is written before it is renamed to name: a name
// of its own per attempt, so a retry never truncates a file another attempt
// of the same range is about to rename.
func tempName(name string) string {
	dir, file := path.Split(name)
	return dir + ".tmp-" + strings.TrimPrefix(file, ".") + "-" + rand.Text()
}
