package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/textvec"
)

const testdata = "../../testdata"

// runCLI runs kerasgo with args and returns the exit code, stdout and stderr.
func runCLI(tb testing.TB, stdin string, args ...string) (int, string, string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	code := run(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		"no args":         {args: nil, wantCode: ExitOK, wantOut: "Commands:"},
		"help predict":    {args: []string{"help", "predict"}, wantCode: ExitOK, wantOut: "--batch-size"},
		"unknown command": {args: []string{"frobnicate"}, wantCode: ExitUsage, wantErr: `unknown command "frobnicate"`},
		"unknown flag":    {args: []string{"predict", "--nope"}, wantCode: ExitUsage, wantErr: "unknown flag"},
		"predict no dir":  {args: []string{"predict", "--input", "x.csv"}, wantCode: ExitUsage, wantErr: "MODEL_DIR"},
		"predict no input": {args: []string{"predict", filepath.Join(testdata, "models", "fortunes")}, wantCode: ExitUsage,
			wantErr: "--input is required"},
		"export no source": {args: []string{"export", "--out", "x"}, wantCode: ExitUsage, wantErr: "--arch and --from"},
		"missing model":    {args: []string{"inspect", "/nonexistent/model"}, wantCode: ExitFailure, wantErr: "/nonexistent/model"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("code %d, stdout %q, stderr %q; want code %d, stdout containing %q, stderr containing %q",
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

func TestPredictCSV(t *testing.T) {
	dir := t.TempDir()
	outPath := filepath.Join(dir, "pred.csv")
	in := filepath.Join(testdata, "features", "fortunes", "test.csv")
	code, _, errOut := runCLI(t, "", "predict", filepath.Join(testdata, "models", "fortunes"), "--input", in, "--output", outPath, "--batch-size", "100")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1256 || len(recs[0]) != 3+20 || recs[0][0] != "id" || recs[0][3] != "p_art" {
		t.Fatalf("got %d lines, header %v", len(recs), recs[0])
	}
	if recs[1][0] == "" || recs[1][1] == "" {
		t.Fatalf("first prediction %v lacks id or label", recs[1])
	}
}

// TestPredictFormatsAgree scores the same examples from CSV and libsvm.
func TestPredictFormatsAgree(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	feats := filepath.Join(testdata, "features", "fortunes")
	code, fromCSV, errOut := runCLI(t, "", "predict", model, "--input", filepath.Join(feats, "test.csv"))
	if code != ExitOK {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	code, fromSVM, errOut := runCLI(t, "", "predict", model, "--input", filepath.Join(feats, "test.libsvm"))
	if code != ExitOK {
		t.Fatalf("libsvm: exit %d: %s", code, errOut)
	}
	csvLines, svmLines := strings.Split(fromCSV, "\n"), strings.Split(fromSVM, "\n")
	if len(csvLines) != len(svmLines) || len(csvLines) < 1000 {
		t.Fatalf("%d csv lines, %d libsvm lines", len(csvLines), len(svmLines))
	}
	for i := 1; i < len(csvLines); i++ {
		// Same probabilities; ids differ (the libsvm file has none, so row numbers).
		_, a, _ := strings.Cut(csvLines[i], ",")
		_, b, _ := strings.Cut(svmLines[i], ",")
		if a != b {
			t.Fatalf("line %d: csv %q, libsvm %q", i+1, a, b)
		}
	}
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
	if code != ExitFailure || !strings.Contains(errOut, "-:1: 3 features, want 256") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestPredictPipelineOptions(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	in := filepath.Join(testdata, "features", "fortunes", "test.libsvm")
	code, serial, errOut := runCLI(t, "", "predict", model, "--input", in, "--workers", "1", "--batch-size", "64")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, parallel, _ := runCLI(t, "", "predict", model, "--input", in, "--workers", "4", "--batch-size", "64")
	if code != ExitOK || parallel != serial {
		t.Fatal("4 workers wrote something else than 1 worker")
	}

	// Two shards together write every row once, numbered as in the whole file.
	all := strings.Split(strings.TrimSpace(serial), "\n")
	got := map[string]string{}
	for _, shard := range []string{"0/2", "1/2"} {
		code, out, errOut := runCLI(t, "", "predict", model, "--input", in, "--batch-size", "64", "--shard", shard)
		if code != ExitOK {
			t.Fatalf("shard %s: exit %d: %s", shard, code, errOut)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			id, _, _ := strings.Cut(line, ",")
			if _, dup := got[id]; dup {
				t.Fatalf("row %s in both shards", id)
			}
			got[id] = line
		}
	}
	for _, line := range all[1:] {
		id, _, _ := strings.Cut(line, ",")
		if got[id] != line {
			t.Fatalf("row %s: shards wrote %q, whole file %q", id, got[id], line)
		}
	}
	if len(got) != len(all)-1 {
		t.Fatalf("shards wrote %d rows, whole file %d", len(got), len(all)-1)
	}

	// Two inputs: row numbers continue across files.
	code, twice, _ := runCLI(t, "", "predict", model, "--input", in+","+in, "--top-k", "2", "--output-format", "jsonl")
	lines := strings.Split(strings.TrimSpace(twice), "\n")
	if code != ExitOK || len(lines) != 2*(len(all)-1) || !strings.HasPrefix(lines[len(lines)-1], `{"id":"2510",`) || !strings.Contains(lines[0], `"top_k":[{`) {
		t.Fatalf("two inputs as jsonl: exit %d, %d lines, last %q", code, len(lines), lines[len(lines)-1])
	}
}

func TestPredictSkipBadRows(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.svm")
	data := "1 0:1 5:1\n2 7:x\n3 1:1\n4 999:1\n5 2:1\n"
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(testdata, "models", "fortunes")
	code, _, errOut := runCLI(t, "", "predict", model, "--input", in)
	if code != ExitFailure || !strings.Contains(errOut, in+":2: field 2") {
		t.Fatalf("without --skip-bad-rows: exit %d, %q", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "predict", model, "--input", in, "--skip-bad-rows")
	if code != ExitOK || strings.Count(out, "\n") != 4 || !strings.Contains(errOut, "skipped 2 bad rows") || !strings.Contains(errOut, in+":4:") {
		t.Fatalf("with --skip-bad-rows: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		id, _, _ := strings.Cut(line, ",")
		ids = append(ids, id)
	}
	if strings.Join(ids, " ") != "1 3 5" {
		t.Fatalf("ids %v, want the rows' positions 1 3 5", ids)
	}
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
	if b, err := os.ReadFile(filepath.Join(dir, "report.html")); err != nil || !strings.Contains(string(b), "<table>") || !strings.Contains(string(b), `class="heat"`) || strings.Contains(string(b), "http") {
		t.Errorf("HTML report missing, or not self-contained: %v", err)
	}
	// TensorFlow loads the retrained model and scores as Go does.
	code, goOut, errOut := runCLI(t, "", "predict", out, "--input", filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if code != ExitOK {
		t.Fatalf("predict: %s", errOut)
	}
	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		t.Fatal("KERASGO_PYTHON is not set: run the tests with `make test`")
	}
	script := `
import sys, numpy as np, tensorflow as tf
p = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](features=tf.constant(np.load(sys.argv[2])))["probabilities"].numpy()
for row in p: print(",".join("%.9g" % v for v in row))`
	cmd := exec.Command(py, "-c", script, out, filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	pyOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	goLines, pyLines := strings.Split(strings.TrimSpace(goOut), "\n")[1:], strings.Split(strings.TrimSpace(string(pyOut)), "\n")
	if len(goLines) != 64 || len(pyLines) != 64 {
		t.Fatalf("%d Go rows, %d TensorFlow rows", len(goLines), len(pyLines))
	}
	for i := range goLines {
		g, p := strings.Split(goLines[i], ",")[3:], strings.Split(pyLines[i], ",")
		for j := range p {
			gv, _ := strconv.ParseFloat(g[j], 64)
			pv, _ := strconv.ParseFloat(p[j], 64)
			if math.Abs(gv-pv) > 1e-5 {
				t.Fatalf("row %d class %d: Go %v, TensorFlow %v", i, j, gv, pv)
			}
		}
	}
	// The source model is untouched.
	if _, err := os.Stat(filepath.Join(model, "fingerprint.pb")); err != nil {
		t.Errorf("MODEL_DIR changed: %v", err)
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
	timer := time.AfterFunc(4*time.Second, cancel) // well after the model has loaded
	defer timer.Stop()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := run(ctx, env, []string{"train", model, "--data", data, "--out", out, "--epochs", "1000", "--batch-size", "16", "--checkpoint-every", "20"})
	if code != ExitOK || !strings.Contains(stderr.String(), "interrupted after") {
		t.Fatalf("interrupted run: exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "saved_model.pb")); err != nil {
		t.Fatalf("the interrupted run saved nothing: %v", err)
	}
	state, err := os.ReadFile(out + ".checkpoint.state.json")
	if err != nil {
		t.Fatalf("no checkpoint state: %v", err)
	}
	var st struct{ Epoch int }
	if err := json.Unmarshal(state, &st); err != nil || st.Epoch < 1 {
		t.Fatalf("checkpoint state %s: %v", state, err)
	}
	epochs := strconv.Itoa(st.Epoch)
	code, stdout2, errOut := runCLI(t, "", "train", model, "--data", data, "--out", out, "--epochs", epochs, "--batch-size", "16", "--checkpoint-every", "20", "--resume")
	if code != ExitOK || !strings.Contains(stdout2, "training completed after "+epochs+" epochs") {
		t.Fatalf("resumed run: exit %d, stderr %q, stdout %q", code, errOut, stdout2)
	}
	if _, err := os.Stat(out + ".checkpoint"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint left after a completed run: %v", err)
	}
}

// TestRawText scores, evaluates and serves raw text through the vectorizer
// the exporter stored with the model, and checks each against the features
// Keras' TextVectorization made for the same documents.
func TestRawText(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	feats := filepath.Join(testdata, "features", "fortunes")
	corpus := filepath.Join(testdata, "data", "fortunes", "test.jsonl")
	b, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var doc struct{ Text string }
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, doc.Text)
	}
	txt := filepath.Join(t.TempDir(), "docs.txt")
	if err := os.WriteFile(txt, []byte(strings.Join(texts, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, fromText, errOut := runCLI(t, "", "predict", model, "--input", txt)
	if code != ExitOK {
		t.Fatalf("predict text: %d %s", code, errOut)
	}
	_, fromFeatures, _ := runCLI(t, "", "predict", model, "--input", filepath.Join(feats, "test.libsvm"))
	if fromText != fromFeatures || strings.Count(fromText, "\n") != 1256 {
		t.Fatal("predictions from raw text differ from predictions from Keras' vectors")
	}

	// A model whose graph holds the TextVectorization takes the same text as strings.
	code, fromStrings, errOut := runCLI(t, "", "predict", filepath.Join(testdata, "models", "fortunes_text"), "--input", txt)
	if code != ExitOK {
		t.Fatalf("predict text on a string model: %d %s", code, errOut)
	}
	sl, fl := strings.Split(fromStrings, "\n"), strings.Split(fromFeatures, "\n")
	if len(sl) != len(fl) {
		t.Fatalf("%d lines from the string model, %d from vectors", len(sl), len(fl))
	}
	for i := 1; i < len(sl)-1; i++ {
		a, b := strings.Split(sl[i], ","), strings.Split(fl[i], ",")
		for j := 3; j < len(b); j++ {
			x, _ := strconv.ParseFloat(a[j], 64)
			y, _ := strconv.ParseFloat(b[j], 64)
			if math.Abs(x-y) > 1e-5 {
				t.Fatalf("line %d col %d: string model %v, vector model %v", i+1, j, x, y)
			}
		}
	}

	// Evaluate on the labelled raw-text JSONL equals evaluate on the vectors.
	code, evText, errOut := runCLI(t, "", "evaluate", model, "--data", corpus, "--json")
	if code != ExitOK {
		t.Fatalf("evaluate text: %d %s", code, errOut)
	}
	_, evFeatures, _ := runCLI(t, "", "evaluate", model, "--data", filepath.Join(feats, "test.libsvm"), "--json")
	strip := func(s string) string { _, rest, _ := strings.Cut(s, `"report"`); return rest }
	if strip(evText) != strip(evFeatures) {
		t.Fatal("evaluation on raw text differs from evaluation on Keras' vectors")
	}

	// Serving: a string instance scores like its vector.
	srv, err := serving.New(context.Background(), serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: model}}}, loadServed)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	body, _ := json.Marshal(map[string]any{"instances": texts[:3]})
	resp, err := http.Post(ts.URL+"/v1/models/m:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Predictions [][]float64 }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	lines := strings.Split(fromFeatures, "\n")
	// A model whose graph takes strings serves the same texts.
	srvText, err := serving.New(context.Background(), serving.Config{Models: []serving.ModelConfig{{Name: "t", BasePath: filepath.Join(testdata, "models", "fortunes_text")}}}, loadServed)
	if err != nil {
		t.Fatal(err)
	}
	defer srvText.Close()
	tsText := httptest.NewServer(srvText.Handler())
	defer tsText.Close()
	resp, err = http.Post(tsText.URL+"/v1/models/t:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var outText struct{ Predictions [][]float64 }
	json.NewDecoder(resp.Body).Decode(&outText)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(outText.Predictions) != 3 {
		t.Fatalf("string model: %d %v", resp.StatusCode, outText)
	}
	for i := range 3 {
		for j := range outText.Predictions[i] {
			if math.Abs(outText.Predictions[i][j]-out.Predictions[i][j]) > 1e-5 {
				t.Fatalf("string model, text %d class %d: %v, vector model %v", i, j, outText.Predictions[i][j], out.Predictions[i][j])
			}
		}
	}
	for i := range 3 {
		for j, p := range strings.Split(lines[i+1], ",")[3:] {
			want, _ := strconv.ParseFloat(p, 64)
			if math.Abs(out.Predictions[i][j]-want) > 1e-6 {
				t.Fatalf("served text %d class %d: %v, want %v", i, j, out.Predictions[i][j], want)
			}
		}
	}
}

// TestTokenizerModel exports a model with a legacy Keras Tokenizer (a
// to_json() Keras wrote, from testdata/tokenizer) and scores raw text through
// it: the same predictions as the Tokenizer's tf-idf vectors given as CSV.
func TestTokenizerModel(t *testing.T) {
	dir := t.TempDir()
	gz, err := os.Open(filepath.Join(testdata, "tokenizer", "num_words_300.tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	tokJSON, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(tokPath, tokJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		t.Fatal("KERASGO_PYTHON is not set: run the tests with `make test`")
	}
	model := filepath.Join(dir, "model")
	code, _, errOut := runCLI(t, "", "export", "--python", py, "--arch", "question", "--input-dim", "300", "--classes", "3",
		"--tokenizer", tokPath, "--tokenizer-mode", "tfidf", "--out", model)
	if code != ExitOK {
		t.Fatalf("export: %d %s", code, errOut)
	}
	docs := []string{"The cat sat on the mat.", "", "Ünïcödé and the the the"}
	txt := filepath.Join(dir, "docs.txt")
	os.WriteFile(txt, []byte(strings.Join(docs, "\n")+"\n"), 0o644)
	code, fromText, errOut := runCLI(t, "", "predict", model, "--input", txt)
	if code != ExitOK {
		t.Fatalf("predict text: %d %s", code, errOut)
	}
	tok, err := textvec.ParseTokenizerJSON(tokJSON)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = tok.WithMode("tfidf"); err != nil {
		t.Fatal(err)
	}
	var csvRows []string
	for _, d := range docs {
		var cells []string
		for _, v := range tok.Matrix(d, nil) {
			cells = append(cells, strconv.FormatFloat(v, 'g', -1, 32))
		}
		csvRows = append(csvRows, strings.Join(cells, ","))
	}
	csvPath := filepath.Join(dir, "docs.csv")
	os.WriteFile(csvPath, []byte(strings.Join(csvRows, "\n")+"\n"), 0o644)
	_, fromVectors, _ := runCLI(t, "", "predict", model, "--input", csvPath)
	if fromText != fromVectors || strings.Count(fromText, "\n") != 4 {
		t.Fatalf("raw text through the tokenizer:\n%s\nvectors:\n%s", fromText, fromVectors)
	}
}
