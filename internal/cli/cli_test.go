package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/servingmodel"
	"github.com/kerasgo/kerasgo/tfmodel"
)

const testdata = "../../testdata"

// kerasTol is how far kerasgo's probabilities may be from Keras' (the
// README's promise): TensorFlow's dense and sparse kernels, batch sizes and
// CPUs sum in different orders, so results agree to float32 rounding, not
// bit for bit.
const kerasTol = 1e-5

// runCLI runs kerasgo with args and returns the exit code, stdout and stderr.
func runCLI(tb testing.TB, stdin string, args ...string) (int, string, string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	code := run(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

// mustRunCLI is runCLI for runs that must succeed; it returns stdout.
func mustRunCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	code, out, errOut := runCLI(tb, "", args...)
	if code != ExitOK {
		tb.Fatalf("kerasgo %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// goldenNPY reads a .npy file Keras wrote under testdata/golden
// (scripts/make_testdata.py).
func goldenNPY(tb testing.TB, name string) dense.Matrix {
	tb.Helper()
	m, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", name))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// readLines returns the lines of a text file, without the last newline.
func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// readGzip returns the uncompressed contents of a .gz file.
func readGzip(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeFile writes a test input and returns its path.
func writeFile(tb testing.TB, path, data string) string {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// fortunesClasses are the class names of the fortunes model, in output order.
func fortunesClasses(tb testing.TB) []string {
	tb.Helper()
	return readLines(tb, filepath.Join(testdata, "features", "fortunes", "classes.txt"))
}

// predictions is the CSV output of kerasgo predict (without --top-k).
type predictions struct {
	header        []string
	ids, labels   []string
	scores        []float64
	probabilities [][]float64
}

func parsePredictions(tb testing.TB, out string) predictions {
	tb.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		tb.Fatalf("predict output is not CSV: %v", err)
	}
	if len(recs) == 0 || len(recs[0]) < 4 {
		tb.Fatalf("predict output has no header: %q", out)
	}
	p := predictions{header: recs[0]}
	for i, rec := range recs[1:] {
		row := make([]float64, len(rec)-3)
		for j, cell := range rec[2:] {
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				tb.Fatalf("predict output line %d field %d: %v", i+2, j+3, err)
			}
			if j == 0 {
				p.scores = append(p.scores, v)
			} else {
				row[j-1] = v
			}
		}
		p.ids, p.labels = append(p.ids, rec[0]), append(p.labels, rec[1])
		p.probabilities = append(p.probabilities, row)
	}
	return p
}

// rows returns predictions [from, to).
func (p predictions) rows(from, to int) predictions {
	return predictions{header: p.header, ids: p.ids[from:to], labels: p.labels[from:to],
		scores: p.scores[from:to], probabilities: p.probabilities[from:to]}
}

// ranked returns row's class indices, most probable first, and the gaps
// between neighbours in that order.
func ranked[T float32 | float64](row []T) (order []int, gaps []float64) {
	order = make([]int, len(row))
	for j := range order {
		order[j] = j
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case row[a] > row[b]:
			return -1
		case row[a] < row[b]:
			return 1
		}
		return 0
	})
	for k := 1; k < len(order); k++ {
		gaps = append(gaps, float64(row[order[k-1]])-float64(row[order[k]]))
	}
	return order, gaps
}

// checkProbabilities checks got against Keras' want, row by row, within kerasTol.
func checkProbabilities(tb testing.TB, what string, got [][]float64, want dense.Matrix) {
	tb.Helper()
	if len(got) != want.Rows {
		tb.Fatalf("%s: %d rows, Keras has %d", what, len(got), want.Rows)
	}
	for i, row := range got {
		if len(row) != want.Cols {
			tb.Fatalf("%s: row %d has %d probabilities, Keras %d", what, i, len(row), want.Cols)
		}
		for j, g := range row {
			if d := math.Abs(g - float64(want.At(i, j))); !(d <= kerasTol) {
				tb.Fatalf("%s: row %d class %d: kerasgo %v, Keras %v (|diff| %.3g > %g)", what, i, j, g, want.At(i, j), d, kerasTol)
			}
		}
	}
}

// checkPredictions checks kerasgo predict's rows against the probabilities
// Keras computed for the same inputs (want, row i for p's row i): the header
// names the classes, every probability is within kerasTol, the score is the
// highest probability, and the label is Keras' argmax wherever Keras' top two
// are more than 2·kerasTol apart (closer, either class is right).
func checkPredictions(tb testing.TB, what string, p predictions, want dense.Matrix, classes []string) {
	tb.Helper()
	wantHeader := []string{"id", "label", "score"}
	for _, c := range classes {
		wantHeader = append(wantHeader, "p_"+c)
	}
	if !slices.Equal(p.header, wantHeader) {
		tb.Fatalf("%s: header %v, want %v", what, p.header, wantHeader)
	}
	checkProbabilities(tb, what, p.probabilities, want)
	for i := range want.Rows {
		order, gaps := ranked(want.Row(i))
		if d := math.Abs(p.scores[i] - float64(want.At(i, order[0]))); !(d <= kerasTol) {
			tb.Fatalf("%s: row %d: score %v, Keras' highest probability %v", what, i, p.scores[i], want.At(i, order[0]))
		}
		if gaps[0] > 2*kerasTol && p.labels[i] != classes[order[0]] {
			tb.Fatalf("%s: row %d: label %q, Keras' argmax %q", what, i, p.labels[i], classes[order[0]])
		}
	}
}

// checkAgree checks that two runs of kerasgo predict over the same inputs
// wrote the same ids, probabilities within kerasTol of each other, and, when
// they name the classes alike, the same labels where that tolerance cannot
// flip the argmax.
func checkAgree(tb testing.TB, what string, a, b predictions) {
	tb.Helper()
	if len(a.ids) != len(b.ids) || len(a.header) != len(b.header) {
		tb.Fatalf("%s: %d rows with header %v against %d rows with header %v", what, len(a.ids), a.header, len(b.ids), b.header)
	}
	sameClasses := slices.Equal(a.header, b.header)
	for i := range a.ids {
		if a.ids[i] != b.ids[i] {
			tb.Fatalf("%s: row %d: id %q against %q", what, i, a.ids[i], b.ids[i])
		}
		for j := range a.probabilities[i] {
			if d := math.Abs(a.probabilities[i][j] - b.probabilities[i][j]); !(d <= kerasTol) {
				tb.Fatalf("%s: row %d (id %s) class %d: %v against %v", what, i, a.ids[i], j, a.probabilities[i][j], b.probabilities[i][j])
			}
		}
		if _, gaps := ranked(a.probabilities[i]); sameClasses && gaps[0] > 2*kerasTol && a.labels[i] != b.labels[i] {
			tb.Fatalf("%s: row %d (id %s): label %q against %q", what, i, a.ids[i], a.labels[i], b.labels[i])
		}
	}
}

// checkReport compares kerasgo evaluate's report (got, JSON) with want, one
// decoded from the same JSON shape: the same keys, array lengths, strings and
// booleans, and numbers within tol.
func checkReport(tb testing.TB, path string, got, want any, tol float64) {
	tb.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			tb.Errorf("%s: got %v, want an object", path, got)
			return
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				tb.Errorf("%s.%s: not in the golden report", path, k)
			}
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok {
				tb.Errorf("%s.%s: missing", path, k)
			} else {
				checkReport(tb, path+"."+k, gv, wv, tol)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			tb.Errorf("%s: got %v, want %v", path, got, want)
			return
		}
		for i := range w {
			checkReport(tb, fmt.Sprintf("%s[%d]", path, i), g[i], w[i], tol)
		}
	case float64:
		if g, ok := got.(float64); !ok || !(math.Abs(g-w) <= tol) {
			tb.Errorf("%s: got %v, want %v (tolerance %g)", path, got, want, tol)
		}
	default:
		if got != want {
			tb.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}

// evaluateReport runs kerasgo evaluate --json and returns its report, decoded.
func evaluateReport(tb testing.TB, model, data string) map[string]any {
	tb.Helper()
	var ev struct{ Report map[string]any }
	out := mustRunCLI(tb, "evaluate", model, "--data", data, "--json")
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Report == nil {
		tb.Fatalf("evaluate --json: %v\n%s", err, out)
	}
	return ev.Report
}

// metricsGolden returns the report scikit-learn and Keras computed on the
// first rows of testdata/features/SET/test.libsvm
// (scripts/make_metrics_golden.py), and how many rows that is.
func metricsGolden(tb testing.TB, set string) (map[string]any, int) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "golden", "metrics_"+set+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var g struct {
		Inputs struct {
			Probabilities string
			Rows          int
		}
		Want map[string]any
	}
	if err := json.Unmarshal(b, &g); err != nil {
		tb.Fatal(err)
	}
	if g.Inputs.Probabilities != set+"_probabilities.npy" || g.Inputs.Rows == 0 {
		tb.Fatalf("metrics_%s.json was computed on %q, %d rows", set, g.Inputs.Probabilities, g.Inputs.Rows)
	}
	return g.Want, g.Inputs.Rows
}

// checkDecisive fails unless every Keras probability in want is more than
// 2·kerasTol from the threshold and from the row's other classes: then
// counts, accuracies and confusion matrices computed from probabilities
// within kerasTol of Keras' equal the golden ones exactly.
func checkDecisive(tb testing.TB, want dense.Matrix, threshold float64) {
	tb.Helper()
	for i := range want.Rows {
		if _, gaps := ranked(want.Row(i)); gaps[0] <= 2*kerasTol {
			tb.Fatalf("golden row %d: top two classes within %g: the metrics golden cannot be compared exactly", i, 2*kerasTol)
		}
		for j, v := range want.Row(i) {
			if math.Abs(float64(v)-threshold) <= 2*kerasTol {
				tb.Fatalf("golden row %d class %d: %v is within %g of the threshold", i, j, v, 2*kerasTol)
			}
		}
	}
}

// headLines writes the first n lines of src to dir/name and returns its path.
func headLines(tb testing.TB, src, dir, name string, n int) string {
	tb.Helper()
	f, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text() + "\n")
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if c := strings.Count(b.String(), "\n"); c != n {
		tb.Fatalf("%s has %d lines, want at least %d", src, c, n)
	}
	return writeFile(tb, filepath.Join(dir, name), b.String())
}

// TestUsage: command-specific usage errors and help (the go command's
// general conventions are TestExitCodes'). An empty want means the stream
// must stay empty.
func TestUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		"help predict":   {args: []string{"help", "predict"}, wantCode: ExitOK, wantOut: "--batch-size"},
		"predict no dir": {args: []string{"predict", "--input", "x.csv"}, wantCode: ExitUsage, wantErr: "MODEL_DIR"},
		"predict no input": {args: []string{"predict", filepath.Join(testdata, "models", "fortunes")}, wantCode: ExitUsage,
			wantErr: "--input is required"},
		"export no source": {args: []string{"export", "--out", "x"}, wantCode: ExitUsage, wantErr: "--arch and --from"},
		"missing model":    {args: []string{"inspect", "/nonexistent/model"}, wantCode: ExitFailure, wantErr: "/nonexistent/model"},
	}
	matches := func(got, want string) bool {
		if want == "" {
			return got == ""
		}
		return strings.Contains(got, want)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode || !matches(out, tc.wantOut) || !matches(errOut, tc.wantErr) {
				t.Fatalf("code %d, stdout %q, stderr %q; want code %d, stdout %q, stderr %q",
					code, out, errOut, tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	code, out, errOut := runCLI(t, "", "inspect", filepath.Join(testdata, "models", "fortunes"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`signature "train_step"`, "float32[?,256]", "label mode onehot", "zippy", "trainable from Go: yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "", "inspect", "--json", filepath.Join(testdata, "models", "fortunes_export"))
	if code != ExitOK || !strings.Contains(out, `"serving_default"`) || strings.Contains(out, `"metadata"`) {
		t.Fatalf("inspect --json of a plain Keras export: code %d\n%s", code, out)
	}
}

// TestPredictCSV scores the fortunes test features from CSV into a file: one
// row per input with its id, and the first rows (Keras' golden inputs) as
// Keras scored them.
func TestPredictCSV(t *testing.T) {
	dir := t.TempDir()
	outPath := filepath.Join(dir, "pred.csv")
	in := filepath.Join(testdata, "features", "fortunes", "test.csv")
	mustRunCLI(t, "predict", filepath.Join(testdata, "models", "fortunes"), "--input", in, "--output", outPath, "--batch-size", "100")
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	got := parsePredictions(t, string(b))
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inRecs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ids) != len(inRecs)-1 || len(got.ids) != 1255 {
		t.Fatalf("%d predictions for %d input rows", len(got.ids), len(inRecs)-1)
	}
	for i, rec := range inRecs[1:] {
		if got.ids[i] != rec[0] {
			t.Fatalf("row %d: id %q, input id %q", i+1, got.ids[i], rec[0])
		}
	}
	want := goldenNPY(t, "fortunes_probabilities.npy")
	checkPredictions(t, "csv", got.rows(0, want.Rows), want, fortunesClasses(t))
}

// TestPredictFormatsAgree scores the same examples from every input format:
// each gives Keras' probabilities on the golden rows (the first 64 test
// examples, fortunes_inputs.npy), and the formats agree on every row.
func TestPredictFormatsAgree(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	feats := filepath.Join(testdata, "features", "fortunes")
	x := goldenNPY(t, "fortunes_inputs.npy")
	want := goldenNPY(t, "fortunes_probabilities.npy")
	classes := fortunesClasses(t)

	// The golden inputs as sparse JSONL rows, with ids.
	var jsonl strings.Builder
	for i := range x.Rows {
		idx, val := []int{}, []float32{}
		for j, v := range x.Row(i) {
			if v != 0 {
				idx, val = append(idx, j), append(val, v)
			}
		}
		line, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("g%d", i), "indices": idx, "values": val})
		jsonl.Write(append(line, '\n'))
	}
	jsonlPath := writeFile(t, filepath.Join(t.TempDir(), "golden.jsonl"), jsonl.String())

	tests := map[string]struct {
		input string
		rows  int
		id    func(i int) string // the id of row i (0-based)
	}{
		"csv":    {filepath.Join(feats, "test.csv"), 1255, nil},
		"libsvm": {filepath.Join(feats, "test.libsvm"), 1255, func(i int) string { return strconv.Itoa(i + 1) }},
		"npy":    {filepath.Join(testdata, "golden", "fortunes_inputs.npy"), x.Rows, func(i int) string { return strconv.Itoa(i + 1) }},
		"jsonl":  {jsonlPath, x.Rows, func(i int) string { return fmt.Sprintf("g%d", i) }},
	}
	got := map[string]predictions{}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", tc.input))
			if len(p.ids) != tc.rows {
				t.Fatalf("%d predictions, want %d", len(p.ids), tc.rows)
			}
			for i := range p.ids {
				if tc.id != nil && p.ids[i] != tc.id(i) {
					t.Fatalf("row %d: id %q, want %q", i, p.ids[i], tc.id(i))
				}
			}
			checkPredictions(t, name, p.rows(0, want.Rows), want, classes)
			got[name] = p
		})
	}
	// Beyond the golden rows: CSV (dense) and libsvm (sparse) agree on every row.
	csvP, svmP := got["csv"], got["libsvm"]
	if len(csvP.ids) == 0 || len(svmP.ids) == 0 {
		t.Fatal("a format failed above")
	}
	svmP.ids = csvP.ids // the libsvm file has no ids
	checkAgree(t, "csv against libsvm", csvP, svmP)
}

func TestPredictBadInputLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bad.csv")
	row := strings.Repeat("0,", 255) + "0\n"
	if err := os.WriteFile(in, []byte(row+row+strings.Repeat("0,", 254)+"x,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "pred.csv")
	code, _, errOut := runCLI(t, "", "predict", filepath.Join(testdata, "models", "fortunes"), "--input", in, "--output", outPath)
	if code != ExitFailure {
		t.Fatalf("exit %d, want %d", code, ExitFailure)
	}
	if !strings.Contains(errOut, in+":3: field 255") {
		t.Errorf("error %q does not name file, line and field", errOut)
	}
	if _, err := os.Stat(outPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output exists after a failed run: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
}

func TestPredictWrongWidth(t *testing.T) {
	code, _, errOut := runCLI(t, "1,2,3\n", "predict", filepath.Join(testdata, "models", "fortunes"), "--input", "-")
	if code != ExitFailure || !strings.Contains(errOut, "-:1: 3 feature fields, want 256") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestPredictPipelineOptions checks that workers, shards and several inputs
// change where rows are scored, not what is written: Keras' probabilities on
// the golden rows, every row once, in input order.
func TestPredictPipelineOptions(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	in := filepath.Join(testdata, "features", "fortunes", "test.libsvm")
	want := goldenNPY(t, "fortunes_probabilities.npy")
	classes := fortunesClasses(t)
	serial := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", in, "--workers", "1", "--batch-size", "64"))
	if len(serial.ids) != 1255 {
		t.Fatalf("%d predictions, want 1255", len(serial.ids))
	}
	checkPredictions(t, "1 worker", serial.rows(0, want.Rows), want, classes)
	parallel := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", in, "--workers", "4", "--batch-size", "64"))
	checkAgree(t, "4 workers against 1", parallel, serial)

	// Two shards together write every row once, numbered as in the whole file.
	byID := map[string]predictions{}
	for _, shard := range []string{"0/2", "1/2"} {
		p := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", in, "--batch-size", "64", "--shard", shard))
		for i, id := range p.ids {
			if _, dup := byID[id]; dup {
				t.Fatalf("row %s in both shards", id)
			}
			byID[id] = p.rows(i, i+1)
		}
	}
	if len(byID) != len(serial.ids) {
		t.Fatalf("shards wrote %d rows, whole file %d", len(byID), len(serial.ids))
	}
	for i, id := range serial.ids {
		p, ok := byID[id]
		if !ok {
			t.Fatalf("row %s in no shard", id)
		}
		checkAgree(t, "shard against whole file", p, serial.rows(i, i+1))
	}

	// Two inputs: row numbers continue across files; the top two classes are
	// Keras' on the golden rows of both copies.
	out := mustRunCLI(t, "predict", model, "--input", in, "--input", in, "--top-k", "2", "--output-format", "jsonl")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2*len(serial.ids) {
		t.Fatalf("two inputs as jsonl: %d lines, want %d", len(lines), 2*len(serial.ids))
	}
	classIndex := map[string]int{}
	for j, c := range classes {
		classIndex[c] = j
	}
	for _, first := range []int{0, len(serial.ids)} {
		for i := range want.Rows {
			var rec struct {
				ID    string
				Label string
				TopK  []struct {
					Label string
					P     float64
				} `json:"top_k"`
			}
			if err := json.Unmarshal([]byte(lines[first+i]), &rec); err != nil {
				t.Fatalf("line %d: %v: %s", first+i+1, err, lines[first+i])
			}
			if rec.ID != strconv.Itoa(first+i+1) || len(rec.TopK) != 2 {
				t.Fatalf("line %d: id %q and %d top classes, want id %d and 2", first+i+1, rec.ID, len(rec.TopK), first+i+1)
			}
			order, gaps := ranked(want.Row(i))
			for k, c := range rec.TopK {
				j, ok := classIndex[c.Label]
				if !ok {
					t.Fatalf("line %d: unknown class %q", first+i+1, c.Label)
				}
				if d := math.Abs(c.P - float64(want.At(i, j))); !(d <= kerasTol) {
					t.Fatalf("line %d: p(%s) = %v, Keras %v", first+i+1, c.Label, c.P, want.At(i, j))
				}
				// The k-th class is Keras' k-th unless a neighbour is too close to call.
				if gaps[k] > 2*kerasTol && (k == 0 || gaps[k-1] > 2*kerasTol) && j != order[k] {
					t.Fatalf("line %d: class %d is %s, Keras' is %s", first+i+1, k+1, c.Label, classes[order[k]])
				}
			}
		}
	}
}

// TestPredictSkipBadRows interleaves bad rows with the first three golden
// rows (the first lines of test.libsvm): with --skip-bad-rows the good rows
// keep their positions and get Keras' probabilities.
func TestPredictSkipBadRows(t *testing.T) {
	dir := t.TempDir()
	good := readLines(t, headLines(t, filepath.Join(testdata, "features", "fortunes", "test.libsvm"), dir, "head.libsvm", 3))
	in := writeFile(t, filepath.Join(dir, "rows.svm"), good[0]+"\n2 7:x\n"+good[1]+"\n4 999:1\n"+good[2]+"\n")
	model := filepath.Join(testdata, "models", "fortunes")
	code, _, errOut := runCLI(t, "", "predict", model, "--input", in)
	if code != ExitFailure || !strings.Contains(errOut, in+":2: field 2") {
		t.Fatalf("without --skip-bad-rows: exit %d, %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "predict", model, "--input", in, "--skip-bad-rows")
	if code != ExitOK || strings.Count(out, "\n") != 4 || !strings.Contains(errOut, "skipped 2 bad rows") || !strings.Contains(errOut, in+":4:") {
		t.Fatalf("with --skip-bad-rows: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	got := parsePredictions(t, out)
	if strings.Join(got.ids, " ") != "1 3 5" {
		t.Fatalf("ids %v, want the rows' positions 1 3 5", got.ids)
	}
	want := goldenNPY(t, "fortunes_probabilities.npy")
	checkPredictions(t, "good rows", got, want.Slice(0, 3), fortunesClasses(t))
}

func TestPredictTextNeedsVectorizer(t *testing.T) {
	txt := filepath.Join(t.TempDir(), "docs.txt")
	if err := os.WriteFile(txt, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "predict", filepath.Join(testdata, "models", "fortunes_export"), "--input", txt)
	if code != ExitFailure || !strings.Contains(errOut, "vectorizer") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestTrainAndEvaluate(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(testdata, "models", "fortunes")
	feats := filepath.Join(testdata, "features", "fortunes")
	out := filepath.Join(dir, "retrained")
	plot := filepath.Join(dir, "curves.svg")
	code, stdout, errOut := runCLI(t, "", "train", model, "--data", filepath.Join(feats, "train.libsvm"),
		"--validation-split", "0.2", "--epochs", "2", "--batch-size", "128", "--out", out, "--plot", plot, "--seed", "3")
	if code != ExitOK {
		t.Fatalf("train: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"epoch 1/2: loss", "epoch 2/2: loss", "| val loss", "training completed after 2 epochs",
		"binary accuracy", "predicting no class (1 − 1/20)", "binary_accuracy_trap"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, stdout)
		}
	}
	if b, err := os.ReadFile(plot); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("plot: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || strings.Contains(e.Name(), "checkpoint") {
			t.Errorf("leftover %s", e.Name())
		}
	}

	// The retrained model: evaluate it, as text and JSON.
	code, stdout, errOut = runCLI(t, "", "evaluate", out, "--data", filepath.Join(feats, "test.libsvm"), "--json",
		"--report", filepath.Join(dir, "report.html"))
	if code != ExitOK {
		t.Fatalf("evaluate: exit %d: %s", code, errOut)
	}
	var ev struct {
		Report struct {
			Rows           int      `json:"rows"`
			Loss           float64  `json:"loss"`
			BinaryAccuracy float64  `json:"binary_accuracy"`
			Top1           *float64 `json:"top1_accuracy"`
			Baselines      struct {
				AllZeros float64 `json:"all_zeros_binary_accuracy"`
			} `json:"baselines"`
		} `json:"report"`
		Findings []struct{ Kind, Text string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatalf("evaluate --json: %v\n%s", err, stdout)
	}
	if ev.Report.Rows != 1255 || ev.Report.Top1 == nil || math.Abs(ev.Report.Baselines.AllZeros-0.95) > 1e-9 || len(ev.Findings) == 0 {
		t.Fatalf("evaluation %+v", ev)
	}
	// Self-contained: nothing loaded from elsewhere (the inline SVG's XML
	// namespace names are identifiers, not loads).
	if b, err := os.ReadFile(filepath.Join(dir, "report.html")); err != nil || !strings.Contains(string(b), "<table>") || !strings.Contains(string(b), `class="heat"`) ||
		regexp.MustCompile(`(src|href)="(https?:)?//|url\((https?:)?//|<link`).Match(b) {
		t.Errorf("HTML report missing, or not self-contained: %v", err)
	}
	// TensorFlow loads the retrained model and scores as Go does; Keras and
	// scikit-learn, given TensorFlow's probabilities, compute the numbers
	// evaluate printed.
	goOut := mustRunCLI(t, "predict", out, "--input", filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		t.Fatal("KERASGO_PYTHON is not set: run the tests with `make test`")
	}
	script := `
import json, sys
import numpy as np, tensorflow as tf, keras
from sklearn.datasets import load_svmlight_file
from sklearn.metrics import accuracy_score
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
predict = lambda x: serve(features=tf.constant(x, tf.float32))["probabilities"].numpy()
x, y = load_svmlight_file(sys.argv[3], n_features=256, zero_based=True)
p = predict(x.toarray())
y = y.astype(int)
t = np.eye(p.shape[1], dtype=np.float32)[y]
acc = keras.metrics.BinaryAccuracy(threshold=0.5)
acc.update_state(t, p)
top = np.sort(p, axis=1)
print(json.dumps({
    "golden_inputs": predict(np.load(sys.argv[2])).tolist(),
    "rows": len(y),
    "loss": float(keras.losses.BinaryCrossentropy()(t, p)),
    "binary_accuracy": float(acc.result()),
    "top1_accuracy": float(accuracy_score(y, p.argmax(axis=1))),
    "near_threshold": int(np.sum(np.abs(p - 0.5) <= float(sys.argv[4]))),
    "near_ties": int(np.sum(top[:, -1] - top[:, -2] <= 2 * float(sys.argv[4]))),
}))`
	cmd := exec.Command(py, "-c", script, out, filepath.Join(testdata, "golden", "fortunes_inputs.npy"),
		filepath.Join(feats, "test.libsvm"), strconv.FormatFloat(kerasTol, 'g', -1, 64))
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	var pyErr bytes.Buffer
	cmd.Stderr = &pyErr
	pyOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, pyErr.String())
	}
	var tf struct {
		GoldenInputs   [][]float32 `json:"golden_inputs"`
		Rows           int
		Loss           float64
		BinaryAccuracy float64 `json:"binary_accuracy"`
		Top1Accuracy   float64 `json:"top1_accuracy"`
		NearThreshold  int     `json:"near_threshold"`
		NearTies       int     `json:"near_ties"`
	}
	if err := json.Unmarshal(pyOut, &tf); err != nil {
		t.Fatalf("python output: %v\n%s", err, pyOut)
	}
	want := dense.New(len(tf.GoldenInputs), 20)
	for i, row := range tf.GoldenInputs {
		copy(want.Row(i), row)
	}
	got := parsePredictions(t, goOut)
	if len(got.ids) != 64 {
		t.Fatalf("%d Go rows, want 64", len(got.ids))
	}
	checkPredictions(t, "retrained model against TensorFlow", got, want, fortunesClasses(t))
	// A probability within kerasTol of the threshold, or a top two within
	// 2·kerasTol, may count either way: that much slack, no more.
	cells := float64(tf.Rows * 20)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"loss", ev.Report.Loss, tf.Loss, kerasTol},
		{"binary accuracy", ev.Report.BinaryAccuracy, tf.BinaryAccuracy, (float64(tf.NearThreshold) + 0.5) / cells},
		{"top-1 accuracy", *ev.Report.Top1, tf.Top1Accuracy, (float64(tf.NearTies) + 0.5) / float64(tf.Rows)},
	} {
		if !(math.Abs(c.got-c.want) <= c.tol) {
			t.Errorf("evaluate's %s %v, Keras/scikit-learn on TensorFlow's probabilities %v (tolerance %g)", c.name, c.got, c.want, c.tol)
		}
	}
	// The source model is untouched.
	if _, err := os.Stat(filepath.Join(model, "fingerprint.pb")); err != nil {
		t.Errorf("MODEL_DIR changed: %v", err)
	}
}

// TestTrainMatchesKeras trains with kerasgo train on the batches Keras'
// train_on_batch ran from the same exported state (fortunes_train_x/y.npy, in
// order, no shuffling) and checks the epoch's loss against Keras' step
// losses and the saved weights against Keras' weights, within 1e-4 (the
// README's training promise).
func TestTrainMatchesKeras(t *testing.T) {
	const tol = 1e-4
	dir := t.TempDir()
	x, y := goldenNPY(t, "fortunes_train_x.npy"), goldenNPY(t, "fortunes_train_y.npy")
	losses := goldenNPY(t, "fortunes_train_losses.npy")
	const batch = 32 // golden.json's train_batch
	if x.Rows != batch*len(losses.Data) || y.Rows != x.Rows {
		t.Fatalf("%d training rows for %d Keras steps of %d", x.Rows, len(losses.Data), batch)
	}
	// The rows as libsvm, one-based (so no index detection is involved).
	var svm strings.Builder
	for i := range x.Rows {
		label := slices.Index(y.Row(i), 1)
		if label < 0 {
			t.Fatalf("training row %d has no label", i)
		}
		svm.WriteString(strconv.Itoa(label))
		for j, v := range x.Row(i) {
			if v != 0 {
				fmt.Fprintf(&svm, " %d:%s", j+1, strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
		}
		svm.WriteByte('\n')
	}
	data := writeFile(t, filepath.Join(dir, "golden.libsvm"), svm.String())
	out := filepath.Join(dir, "trained")
	stdout := mustRunCLI(t, "train", filepath.Join(testdata, "models", "fortunes"), "--data", data, "--out", out,
		"--epochs", "1", "--batch-size", strconv.Itoa(batch), "--shuffle=false")

	// The epoch's loss is the mean of its steps' (equal-sized batches), printed to 4 decimals.
	var kerasMean float64
	for _, l := range losses.Data {
		kerasMean += float64(l) / float64(len(losses.Data))
	}
	m := regexp.MustCompile(`epoch 1/1: loss (\d+\.\d+)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no epoch line in:\n%s", stdout)
	}
	if got, _ := strconv.ParseFloat(m[1], 64); !(math.Abs(got-kerasMean) <= tol+0.5e-4) {
		t.Errorf("epoch loss %v, mean of Keras' step losses %.6f", got, kerasMean)
	}

	trained, err := tfmodel.Load(context.Background(), out, tfmodel.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer trained.Close()
	weights, err := trained.Weights(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantW, err := rowio.ReadNPZFile(filepath.Join(testdata, "golden", "fortunes_train_weights.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(weights) != len(wantW) || len(wantW) == 0 {
		t.Fatalf("%d weights, Keras has %d", len(weights), len(wantW))
	}
	for k, w := range wantW {
		g, ok := weights[k]
		if !ok || g.Rows != w.Rows || g.Cols != w.Cols {
			t.Fatalf("weight %s: kerasgo has %d×%d, Keras %d×%d", k, g.Rows, g.Cols, w.Rows, w.Cols)
		}
		for i := range w.Data {
			if d := math.Abs(float64(g.Data[i]) - float64(w.Data[i])); !(d <= tol) {
				t.Fatalf("weight %s[%d]: kerasgo %v, Keras %v", k, i, g.Data[i], w.Data[i])
			}
		}
	}
}

func TestTrainErrors(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	feats := filepath.Join(testdata, "features", "fortunes")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.libsvm")
	if err := os.WriteFile(bad, []byte("0 1:1\n25 2:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		"csv has no labels":     {args: []string{"train", model, "--data", filepath.Join(feats, "test.csv"), "--out", dir + "/o"}, wantCode: ExitUsage, wantErr: "carry labels"},
		"label out of range":    {args: []string{"train", model, "--data", bad, "--out", dir + "/o"}, wantCode: ExitFailure, wantErr: bad + ":2: field 1 (label)"},
		"plain export":          {args: []string{"train", filepath.Join(testdata, "models", "fortunes_export"), "--data", bad, "--out", dir + "/o"}, wantCode: ExitFailure, wantErr: "no kerasgo metadata"},
		"out is the model":      {args: []string{"train", model, "--data", bad, "--out", model}, wantCode: ExitUsage, wantErr: "never modifies"},
		"resume without ckpt":   {args: []string{"train", model, "--data", bad, "--out", dir + "/o", "--resume"}, wantCode: ExitFailure, wantErr: "--resume"},
		"both validations":      {args: []string{"train", model, "--data", bad, "--out", dir + "/o", "--validation-split", "0.1", "--validation-data", bad}, wantCode: ExitUsage, wantErr: "not both"},
		"evaluate needs labels": {args: []string{"evaluate", model, "--data", filepath.Join(feats, "test.csv")}, wantCode: ExitUsage, wantErr: "carry labels"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
	if _, err := os.Stat(dir + "/o"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run left an output model: %v", err)
	}
}

// TestTrainInterruptAndResume stops a long run (as SIGINT does, through the
// context), checks that the weights reached are saved and a checkpoint is
// left, then resumes from the checkpoint to the end.
func TestTrainInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(testdata, "models", "fortunes")
	data := filepath.Join(testdata, "features", "fortunes", "train.libsvm")
	out := filepath.Join(dir, "model")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Interrupt at a point every machine reaches however slow it is, rather
	// than after a time: when the first epoch's line is written. cancel runs
	// inside that Write, on the training goroutine, so the second epoch
	// starts cancelled; checkpoints were written during the first.
	stdout := &watchWriter{re: regexp.MustCompile(`(?m)^epoch 1/1000: loss`), fn: func([]string) { cancel() }}
	var stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	const every = 20
	code := run(ctx, env, []string{"train", model, "--data", data, "--out", out, "--epochs", "1000", "--batch-size", "64", "--checkpoint-every", strconv.Itoa(every)})
	if code != ExitOK || !strings.Contains(stderr.String(), "interrupted after") || strings.Contains(stdout.String(), "epoch 2/") {
		t.Fatalf("interrupted run: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "saved_model.pb")); err != nil {
		t.Fatalf("the interrupted run saved nothing: %v", err)
	}
	state, err := os.ReadFile(out + ".checkpoint.state.json")
	if err != nil {
		t.Fatalf("no checkpoint state: %v", err)
	}
	var st struct{ Epoch, Step int }
	if err := json.Unmarshal(state, &st); err != nil || st.Epoch != 1 || st.Step == 0 || st.Step%every != 0 {
		t.Fatalf("checkpoint state %s: %v; want epoch 1 and a multiple of %d steps", state, err, every)
	}
	code, stdout2, errOut := runCLI(t, "", "train", model, "--data", data, "--out", out, "--epochs", "1", "--batch-size", "64", "--checkpoint-every", strconv.Itoa(every), "--resume")
	if code != ExitOK || !strings.Contains(stdout2, "training completed after 1 epochs") {
		t.Fatalf("resumed run: exit %d, stderr %q, stdout %q", code, errOut, stdout2)
	}
	if _, err := os.Stat(out + ".checkpoint"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left after a completed run: %v", err)
	}
}

// TestRawText scores, evaluates and serves raw text through the vectorizer
// the exporter stored with the model, and through a model whose graph holds
// Keras' TextVectorization. The golden documents (the first 64 of the test
// set) get Keras' probabilities and Keras/scikit-learn's metrics; every
// document scores as the features Keras' TextVectorization made for it.
func TestRawText(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(testdata, "models", "fortunes")
	textModel := filepath.Join(testdata, "models", "fortunes_text")
	feats := filepath.Join(testdata, "features", "fortunes")
	corpus := filepath.Join(testdata, "data", "fortunes", "test.jsonl")
	classes := fortunesClasses(t)
	want := goldenNPY(t, "fortunes_probabilities.npy")          // the vector model on Keras' vectors
	wantText := goldenNPY(t, "fortunes_text_probabilities.npy") // the string model on the texts
	var texts []string
	for _, line := range readLines(t, corpus) {
		var doc struct{ Text string }
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, doc.Text)
	}
	if goldenTexts := readLines(t, filepath.Join(testdata, "golden", "fortunes_text_inputs.txt")); !slices.Equal(texts[:len(goldenTexts)], goldenTexts) || len(goldenTexts) != want.Rows {
		t.Fatal("fortunes_text_inputs.txt is not the first golden rows of test.jsonl: regenerate testdata")
	}
	txt := writeFile(t, filepath.Join(dir, "docs.txt"), strings.Join(texts, "\n")+"\n")

	fromText := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", txt))
	fromFeatures := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", filepath.Join(feats, "test.libsvm")))
	if len(fromText.ids) != 1255 {
		t.Fatalf("%d predictions from %d documents", len(fromText.ids), len(texts))
	}
	checkPredictions(t, "raw text", fromText.rows(0, want.Rows), want, classes)
	checkAgree(t, "raw text against Keras' vectors", fromText, fromFeatures)

	// A model whose graph holds the TextVectorization takes the same text as strings.
	// A plain Keras export carries no class names: kerasgo numbers the classes.
	fromStrings := parsePredictions(t, mustRunCLI(t, "predict", textModel, "--input", txt))
	numbered := make([]string, len(classes))
	for j := range numbered {
		numbered[j] = fmt.Sprintf("class_%d", j)
	}
	checkPredictions(t, "string model", fromStrings.rows(0, wantText.Rows), wantText, numbered)
	checkAgree(t, "string model against Keras' vectors", fromStrings, fromFeatures)

	// Evaluate on the golden documents, as labelled raw-text JSONL and as
	// Keras' vectors: scikit-learn's and Keras' numbers. The golden
	// probabilities are decisive (checkDecisive), so counts must match exactly.
	golden, rows := metricsGolden(t, "fortunes")
	checkDecisive(t, want.Slice(0, rows), 0.5)
	for name, data := range map[string]string{
		"text":    headLines(t, corpus, dir, "head.jsonl", rows),
		"vectors": headLines(t, filepath.Join(feats, "test.libsvm"), dir, "head.libsvm", rows),
	} {
		checkReport(t, "evaluate "+name, evaluateReport(t, model, data), golden, kerasTol)
	}
	// On the whole test set, raw text evaluates as Keras' vectors do.
	checkReport(t, "evaluate text against vectors", evaluateReport(t, model, corpus),
		evaluateReport(t, model, filepath.Join(feats, "test.libsvm")), kerasTol)

	// Serving: string instances score as Keras scored their vectors, on the
	// vector model (through its vectorizer) and on the string model.
	const served = 3
	body, _ := json.Marshal(map[string]any{"instances": texts[:served]})
	for _, tc := range []struct {
		name, dir string
		want      dense.Matrix
	}{
		{"vector model", model, want.Slice(0, served)},
		{"string model", textModel, wantText.Slice(0, served)},
	} {
		srv, err := serving.New(context.Background(), serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: tc.dir}}}, servingmodel.Load)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		resp, err := http.Post(ts.URL+"/v1/models/m:predict", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Predictions [][]float64 }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		ts.Close()
		srv.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v", tc.name, resp.StatusCode, err)
		}
		checkProbabilities(t, "served text, "+tc.name, out.Predictions, tc.want)
	}
}

// TestTokenizerModel exports a model with a legacy Keras Tokenizer (a
// to_json() Keras wrote, from testdata/tokenizer) and scores raw text through
// it. The anchor is Keras' own texts_to_matrix(mode="tfidf") for the same
// documents (make_tokenizer_golden.py's rows): fed to the model as CSV, they
// must score as the raw text does.
func TestTokenizerModel(t *testing.T) {
	const config, mode = "num_words_300", "tfidf"
	dir := t.TempDir()
	tokDir := filepath.Join(testdata, "tokenizer")
	tokPath := writeFile(t, filepath.Join(dir, "tokenizer.json"), string(readGzip(t, filepath.Join(tokDir, config+".tokenizer.json.gz"))))
	var summary struct {
		Docs     int `json:"docs"`
		EdgeDocs int `json:"edge_docs"`
		Configs  map[string]struct {
			Width int `json:"width"`
		} `json:"configs"`
	}
	b, err := os.ReadFile(filepath.Join(tokDir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &summary); err != nil {
		t.Fatal(err)
	}
	width := summary.Configs[config].Width
	var golden struct {
		Rows  [][2][]int   `json:"rows"`
		TFIDF [][3]float64 `json:"tfidf"`
	}
	if err := json.Unmarshal(readGzip(t, filepath.Join(tokDir, config+".rows.json.gz")), &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Rows) != summary.Docs || width == 0 {
		t.Fatalf("%s: %d rows, summary.json says %d documents of width %d", config, len(golden.Rows), summary.Docs, width)
	}

	// The documents and their rows in the golden corpus: the first fortunes
	// test texts come first, make_tokenizer_golden.py's EDGE cases last.
	type doc struct {
		text string
		row  int
	}
	var docs []doc
	for i, line := range readLines(t, filepath.Join(testdata, "data", "fortunes", "test.jsonl"))[:6] {
		var rec struct{ Text string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{rec.Text, i})
	}
	edge := summary.Docs - summary.EdgeDocs
	docs = append(docs,
		doc{"", edge + 0},
		doc{"ÉCOLE École", edge + 2},
		doc{"İstanbul ΣΑΣ straße", edge + 3},
		doc{"ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ' aΣb ΑΣ\u0301 ΑΣ:Α", edge + 7},
		doc{"the the the THE The", edge + 9},
	)
	tfidf := map[[2]int]float64{}
	for _, e := range golden.TFIDF {
		tfidf[[2]int{int(e[0]), int(e[1])}] = e[2]
	}
	var csvRows, lines []string
	for _, d := range docs {
		row := make([]string, width)
		for k := range row {
			row[k] = "0"
		}
		idx, counts := golden.Rows[d.row][0], golden.Rows[d.row][1]
		for k, j := range idx {
			v, ok := tfidf[[2]int{j, counts[k]}]
			if !ok {
				t.Fatalf("no tfidf value for column %d count %d", j, counts[k])
			}
			row[j] = strconv.FormatFloat(v, 'g', -1, 64)
		}
		csvRows, lines = append(csvRows, strings.Join(row, ",")), append(lines, d.text)
	}
	// The golden rows belong to these texts: the fortunes ones have words, "" has none.
	if len(golden.Rows[docs[0].row][0]) == 0 || len(golden.Rows[edge][0]) != 0 {
		t.Fatalf("%s rows do not line up with the corpus", config)
	}

	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		t.Fatal("KERASGO_PYTHON is not set: run the tests with `make test`")
	}
	model := filepath.Join(dir, "model")
	mustRunCLI(t, "export", "--python", py, "--arch", "question", "--input-dim", strconv.Itoa(width), "--classes", "3",
		"--tokenizer", tokPath, "--tokenizer-mode", mode, "--out", model)
	txt := writeFile(t, filepath.Join(dir, "docs.txt"), strings.Join(lines, "\n")+"\n")
	fromText := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", txt))
	kerasCSV := writeFile(t, filepath.Join(dir, "keras.csv"), strings.Join(csvRows, "\n")+"\n")
	fromKeras := parsePredictions(t, mustRunCLI(t, "predict", model, "--input", kerasCSV))
	if len(fromText.ids) != len(docs) {
		t.Fatalf("%d predictions for %d documents", len(fromText.ids), len(docs))
	}
	checkAgree(t, "raw text against Keras' texts_to_matrix", fromText, fromKeras)
}
