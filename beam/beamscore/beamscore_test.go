package beamscore_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
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
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
)

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

// testdata is the main module's testdata directory.
var testdata = filepath.Join("..", "..", "testdata")

// run builds and runs cfg's pipeline on Prism (loopback: the DoFns run in
// this process) and returns the kerasgo counters. Prism's final counter
// values can miss whole bundles (32 of 64 rows in one run of many; 3,195 of
// 6,297 earlier), so tests hold them to between 1 and the true count, and
// count rows exactly in the output files.
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

// goldenProbabilities are Keras' own probabilities for the golden rows
// (scripts/make_testdata.py), one row per golden input.
func goldenProbabilities(t *testing.T) dense.Matrix {
	t.Helper()
	p, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_probabilities.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenFiles writes the golden rows as libsvm (split over two files) and
// their raw texts as JSONL with ids, and returns the paths.
func goldenFiles(t *testing.T) (libsvm []string, jsonl string) {
	t.Helper()
	x, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	half := x.Rows / 2
	for _, part := range [][2]int{{0, half}, {half, x.Rows}} {
		var b strings.Builder
		for i := part[0]; i < part[1]; i++ {
			b.WriteString("0")
			for j, v := range x.Row(i) {
				if v != 0 {
					fmt.Fprintf(&b, " %d:%g", j, v)
				}
			}
			b.WriteByte('\n')
		}
		path := filepath.Join(dir, fmt.Sprintf("rows-%d.libsvm", part[0]))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		libsvm = append(libsvm, path)
	}
	texts, err := os.ReadFile(filepath.Join(testdata, "golden", "fortunes_text_inputs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i, text := range strings.Split(strings.TrimSuffix(string(texts), "\n"), "\n") {
		line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("doc%d", i), "text": text})
		b.Write(append(line, '\n'))
	}
	jsonl = filepath.Join(dir, "texts.jsonl")
	if err := os.WriteFile(jsonl, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return libsvm, jsonl
}

// TestMatchesKeras scores the golden rows on Prism, cut into many small
// ranges and batches, and checks every output row against Keras' own
// probabilities for that row: libsvm over two files (sparse batches), raw
// text in JSONL with ids (the model's vectorizer), and dense CSV rows of
// one file matched by two globs (scored once).
func TestMatchesKeras(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	want := goldenProbabilities(t)
	libsvm, jsonl := goldenFiles(t)
	csvInput := goldenCSV(t, nil)
	// goldenRow maps a file and line to the golden row it holds.
	tests := []struct {
		name      string
		inputs    []string
		goldenRow func(file string, line int, id string) int
	}{
		{"libsvm, two files", libsvm, func(file string, line int, _ string) int {
			if file == libsvm[1] {
				return want.Rows/2 + line - 1
			}
			return line - 1
		}},
		{"jsonl text with ids", []string{jsonl}, func(_ string, _ int, id string) int {
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "doc"))
			return n
		}},
		{"csv, dense rows, two globs matching one file", []string{csvInput, filepath.Join(filepath.Dir(csvInput), "*.csv")},
			func(_ string, line int, _ string) int { return line - 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "pred")
			counters, err := run(t, beamscore.Config{Model: model, Inputs: tc.inputs, Output: prefix, LinesPerSplit: 7, BatchSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			header, got := beamRows(t, prefix)
			if len(header) != 3+want.Cols || !slices.Equal(header[:3], []string{"id", "label", "score"}) {
				t.Fatalf("header %q, want id, label, score and %d class columns", header, want.Cols)
			}
			seen := make([]bool, want.Rows)
			for file, rows := range got {
				for line, r := range rows {
					where := fmt.Sprintf("%s:%d", file, line)
					g := tc.goldenRow(file, line, r[0])
					if g < 0 || g >= want.Rows || seen[g] {
						t.Fatalf("%s (id %s): golden row %d is out of range or scored twice", where, r[0], g)
					}
					seen[g] = true
					best := 0
					for c := range want.Cols {
						p, err := strconv.ParseFloat(r[3+c], 64)
						if err != nil || math.Abs(p-float64(want.At(g, c))) > 1e-5 {
							t.Fatalf("%s: %s = %s, Keras %v", where, header[3+c], r[3+c], want.At(g, c))
						}
						if want.At(g, c) > want.At(g, best) {
							best = c
						}
					}
					if class := strings.TrimPrefix(header[3+best], "p_"); r[1] != class {
						t.Errorf("%s: label %s, Keras' most probable class %s", where, r[1], class)
					}
				}
			}
			if n := slices.Index(seen, false); n >= 0 {
				t.Fatalf("golden row %d was not scored", n)
			}
			if n := counters[beamscore.CounterRows]; n < 1 || n > int64(want.Rows) {
				t.Errorf("rows counter %d, want 1..%d", n, want.Rows)
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
	if bad, rows := counters[beamscore.CounterBadRows], counters[beamscore.CounterRows]; bad > 1 || rows < 1 || rows > 39 {
		t.Errorf("counters %v, want at most 1 bad row and 1..39 rows", counters)
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
