package beamscore_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/kerasgo/kerasgo/beam/beamscore"
	"github.com/kerasgo/kerasgo/internal/cli"
	"github.com/kerasgo/kerasgo/rowio"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// testdata is the main module's testdata directory.
var testdata = filepath.Join("..", "..", "testdata")

// run builds and runs cfg's pipeline on Prism (loopback: the DoFns run in
// this process) and returns the kerasgo counters. Prism's final counter
// values can miss bundles (3,195 of 6,297 rows in one of three identical
// runs here), so tests hold them to at most the true count, and count rows
// exactly in the output files.
func run(t *testing.T, cfg beamscore.Config) (map[string]int64, error) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	if err := beamscore.Build(s, cfg); err != nil {
		t.Fatal(err)
	}
	res, err := prism.Execute(context.Background(), p)
	if err != nil {
		return nil, err
	}
	counters := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == "kerasgo" {
			counters[c.Key.Name] += c.Result()
		}
	}
	return counters, nil
}

// predictRow is one output row without its origin: id, label, score and
// the probabilities, as text.
type predictRow []string

// kerasgoPredict runs `kerasgo predict` on one input and returns its rows
// by id, and its header.
func kerasgoPredict(t *testing.T, model, input string, extra ...string) ([]string, map[string]predictRow) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "predict.csv")
	var stderr bytes.Buffer
	args := append([]string{"predict", model, "--input", input, "--output", out}, extra...)
	if code := cli.Main(context.Background(), args, io.Discard, &stderr); code != 0 {
		t.Fatalf("kerasgo predict: exit %d: %s", code, stderr.String())
	}
	records := readCSV(t, out)
	rows := map[string]predictRow{}
	for _, r := range records[1:] {
		rows[r[0]] = r
	}
	return records[0], rows
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// beamRows reads every CSV output file under prefix: rows by file and line,
// each without its origin columns, and the header after them.
func beamRows(t *testing.T, prefix string) ([]string, map[string]map[int]predictRow) {
	t.Helper()
	files, err := filepath.Glob(prefix + "-*.csv")
	if err != nil || len(files) == 0 {
		t.Fatalf("no output files %s-*.csv (%v)", prefix, err)
	}
	var header []string
	rows := map[string]map[int]predictRow{}
	for _, f := range files {
		records := readCSV(t, f)
		if h := records[0]; !slices.Equal(h[:2], []string{"file", "line"}) {
			t.Fatalf("%s: header %q does not start with file,line", f, h)
		}
		header = records[0][2:]
		for _, r := range records[1:] {
			line, err := strconv.Atoi(r[1])
			if err != nil {
				t.Fatalf("%s: line %q", f, r[1])
			}
			if rows[r[0]] == nil {
				rows[r[0]] = map[int]predictRow{}
			}
			if _, dup := rows[r[0]][line]; dup {
				t.Fatalf("%s line %d written twice", r[0], line)
			}
			rows[r[0]][line] = r[2:]
		}
	}
	return header, rows
}

// sameRow compares a Beam row with kerasgo predict's: the same id and
// labels, and probabilities within 1e-6 (the two batch rows differently,
// and a batch's composition may move the last float bit).
func sameRow(t *testing.T, where string, got, want predictRow) {
	t.Helper()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("%s: Beam %q, kerasgo predict %q", where, got, want)
	}
	for i := 2; i < len(got); i++ {
		g, err1 := strconv.ParseFloat(got[i], 64)
		w, err2 := strconv.ParseFloat(want[i], 64)
		if err1 != nil || err2 != nil || math.Abs(g-w) > 1e-6 {
			t.Fatalf("%s: column %d: Beam %s, kerasgo predict %s", where, i, got[i], want[i])
		}
	}
}

// TestMatchesKerasgoPredict scores the testdata files on Prism, cut into
// many small ranges, and checks that the union of the output files is
// kerasgo predict's output row for row: libsvm files (sparse batches) and
// raw text in JSONL (the model's vectorizer), which carry their own ids.
func TestMatchesKerasgoPredict(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	csvInput := goldenCSV(t, nil)
	tests := []struct {
		name   string
		inputs []string
		byID   bool // rows carry ids: compare by id, not by line
	}{
		{"libsvm", []string{
			filepath.Join(testdata, "features", "fortunes", "train.libsvm"),
			filepath.Join(testdata, "features", "fortunes", "test.libsvm"),
		}, false},
		{"jsonl text", []string{filepath.Join(testdata, "data", "fortunes", "test.jsonl")}, true},
		{"csv, dense rows, two globs matching one file", []string{csvInput, filepath.Join(filepath.Dir(csvInput), "*.csv")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "pred")
			counters, err := run(t, beamscore.Config{Model: model, Inputs: tc.inputs, Output: prefix, LinesPerSplit: 97, BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			header, got := beamRows(t, prefix)
			total := 0
			for _, in := range slices.Compact(slices.Sorted(slices.Values(tc.inputs[:min(len(tc.inputs), 2)]))) {
				if strings.Contains(in, "*") {
					continue // the same file again
				}
				wantHeader, want := kerasgoPredict(t, model, in)
				if !slices.Equal(header, wantHeader) {
					t.Fatalf("header %q, kerasgo predict %q", header, wantHeader)
				}
				rows := got[in]
				if len(rows) != len(want) {
					t.Fatalf("%s: %d rows from Beam, %d from kerasgo predict", in, len(rows), len(want))
				}
				for line, r := range rows {
					key := strconv.Itoa(line)
					if tc.byID {
						key = r[0]
					}
					w, ok := want[key]
					if !ok {
						t.Fatalf("%s line %d (id %s): not in kerasgo predict's output", in, line, r[0])
					}
					sameRow(t, in+":"+strconv.Itoa(line), r, w)
				}
				total += len(want)
			}
			if n := counters[beamscore.CounterRows]; n <= 0 || n > int64(total) {
				t.Errorf("rows counter %d, want 1..%d", n, total)
			}
		})
	}
}

// TestBadRows: a row that does not parse goes to the dead-letter file with
// its origin and the error, and is counted, with SkipBadRows; without it the
// job fails with the file and line.
func TestBadRows(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	src, err := os.ReadFile(filepath.Join(testdata, "features", "fortunes", "test.libsvm"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")[:40]
	lines[22] = "3 12:1 x:1\n" // line 23: an index that is not a number
	input := filepath.Join(t.TempDir(), "bad.libsvm")
	if err := os.WriteFile(input, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}

	prefix := filepath.Join(t.TempDir(), "pred")
	counters, err := run(t, beamscore.Config{Model: model, Inputs: []string{input}, Output: prefix, SkipBadRows: true, LinesPerSplit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if counters[beamscore.CounterBadRows] > 1 || counters[beamscore.CounterRows] > 39 {
		t.Errorf("counters %v, want at most 1 bad row and 39 rows", counters)
	}
	dead, err := filepath.Glob(prefix + "-*.deadletter.jsonl")
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead-letter files %v (%v), want 1", dead, err)
	}
	b, err := os.ReadFile(dead[0])
	if err != nil {
		t.Fatal(err)
	}
	var bad struct {
		File  string
		Line  int
		Error string
	}
	if err := json.Unmarshal(b, &bad); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if bad.File != input || bad.Line != 23 || !strings.Contains(bad.Error, `"x"`) {
		t.Errorf("dead letter %+v, want %s line 23 naming the index", bad, input)
	}
	if _, got := beamRows(t, prefix); len(got[input]) != 39 {
		t.Errorf("%d rows written, want 39", len(got[input]))
	}

	_, err = run(t, beamscore.Config{Model: model, Inputs: []string{input}, Output: filepath.Join(t.TempDir(), "pred"), LinesPerSplit: 10})
	if err == nil || !strings.Contains(err.Error(), input+":23") {
		t.Fatalf("without SkipBadRows: %v, want a failure at %s:23", err, input)
	}
}

// goldenCSV writes the golden feature rows as a headerless CSV file, with
// the rows at the given 0-based indices replaced by bad ones, and returns its path.
func goldenCSV(t *testing.T, bad map[int]string) string {
	t.Helper()
	x, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range x.Rows {
		if line, ok := bad[i]; ok {
			b.WriteString(line + "\n")
			continue
		}
		for j, v := range x.Row(i) {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
		}
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCSVRangeStartingWithABadRow: a CSV range whose first line is not
// numbers is a bad row (dead-lettered), not a header to drop in silence.
func TestCSVRangeStartingWithABadRow(t *testing.T) {
	bad := "id," + strings.Repeat("x,", 255) + "x"
	input := goldenCSV(t, map[int]string{10: bad}) // line 11 starts the second range of 10
	prefix := filepath.Join(t.TempDir(), "pred")
	if _, err := run(t, beamscore.Config{Model: filepath.Join(testdata, "models", "fortunes"), Inputs: []string{input},
		Output: prefix, SkipBadRows: true, LinesPerSplit: 10}); err != nil {
		t.Fatal(err)
	}
	_, got := beamRows(t, prefix)
	x, _ := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if len(got[input]) != x.Rows-1 {
		t.Errorf("%d rows written, want %d", len(got[input]), x.Rows-1)
	}
	if _, ok := got[input][11]; ok {
		t.Error("the bad line 11 was scored")
	}
	dead, _ := filepath.Glob(prefix + "-*.deadletter.jsonl")
	if len(dead) != 1 {
		t.Fatalf("dead-letter files %v, want 1", dead)
	}
	if b, _ := os.ReadFile(dead[0]); !strings.Contains(string(b), `"line":11`) {
		t.Errorf("dead letter %s, want line 11", b)
	}
}

// TestModelThatDoesNotLoad fails once, at Check, with the loader's error.
func TestModelThatDoesNotLoad(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-model")
	err := beamscore.Check(context.Background(), beamscore.Config{Model: missing, Inputs: []string{"x.libsvm"}, Output: "out"})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Check = %v, want the loader's error naming %s", err, missing)
	}
}
