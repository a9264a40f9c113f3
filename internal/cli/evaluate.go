package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/atomicfile"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/internal/learningcurve"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving/requestlog"
)

type evaluateFlags struct {
	data, report string
	labels       string
	json         bool
	batchSize    int
}

func evaluateCommand() *Command {
	return &Command{
		Name:      "evaluate",
		UsageLine: "kerasgo evaluate MODEL_DIR --data FILE [--json] [--report FILE.html]",
		Short:     "honest metrics, baselines and a plain-language diagnosis",
		Long: `Evaluate scores labelled rows (libsvm, or JSONL with "label"/"labels") with
the model's evaluation signature and prints, each beside its baseline:

  single-label data: loss, binary (element-wise) accuracy — what Keras up to
    2.3 printed as "accuracy" for sigmoid outputs with binary cross-entropy —
    and top-1 accuracy, macro F1, per-class precision/recall/F1/support, and
    the most confused classes;
  multi-label data: loss, subset accuracy, Hamming loss, micro and macro F1,
    per-class figures;
  baselines: majority-class accuracy, the all-zeros predictor's binary
    accuracy (1 - mean positives / C), the loss of predicting the class priors,
    the class distribution and imbalance ratio;

then a diagnosis in plain words when a number misleads (the binary-accuracy
trap, imbalance, a plateau), each sentence with the numbers it rests on.
The label mode comes from the model's metadata. A SavedModel without it
(not written by kerasgo export: a Keras model.export(), a Keras 2 model.save)
is scored by its predictions, with what the data and outputs imply, said on
stderr: one label on every row means one-hot targets, otherwise multi-hot;
rows of probabilities summing to 1 mean a softmax, scored with categorical
cross-entropy, otherwise binary. --report writes one self-contained HTML
page.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &evaluateFlags{}
			fs.StringVar(&f.data, "data", "", "labelled data: libsvm or JSONL, or with --labels request logs (required)")
			fs.StringVar(&f.labels, "labels", "", "a CSV file of id,label rows: --data is then kerasgo serve's request logs (a .tfrecord file, a directory, or a log prefix), whose rows it labels by request id")
			fs.BoolVar(&f.json, "json", false, "print the report and findings as JSON")
			fs.StringVar(&f.report, "report", "", "also write a self-contained HTML report")
			fs.IntVar(&f.batchSize, "batch-size", 500, "rows per model call")
			return f.run
		},
	}
}

// evaluationJSON is the JSON form of kerasgo evaluate.
type evaluationJSON struct {
	Model    string               `json:"model"`
	Data     string               `json:"data"`
	Report   evaluation.Report    `json:"report"`
	Findings []evaluation.Finding `json:"findings"`
}

func (f *evaluateFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	if f.data == "" {
		return usagef("--data is required")
	}
	if f.batchSize <= 0 {
		return usagef("--batch-size must be at least 1")
	}
	m, err := kerasgo.Open(ctx, args[0], kerasgo.DefaultOptions())
	if err != nil {
		return err
	}
	defer m.Close()
	src, err := labelledSource(env, m, f.data, f.labels)
	if err != nil {
		return err
	}
	model, opts, inferred, err := m.Evaluator(ctx, src)
	if err != nil {
		return err
	}
	if inferred != "" {
		fmt.Fprintf(env.Stderr, "note: %s\n", inferred)
	}
	opts.BatchSize, opts.ValPath = f.batchSize, f.data
	rep, err := fit.Evaluate(ctx, model, src, opts)
	if err != nil {
		return err
	}
	ev := evaluationJSON{Model: args[0], Data: f.data, Report: rep, Findings: evaluation.Diagnose(rep, evaluation.Inputs{})}
	if f.report != "" {
		rec, err := fit.ReadRecord(args[0])
		if err != nil {
			return err
		}
		if err := writeHTMLReport(f.report, ev, rec); err != nil {
			return err
		}
	}
	if f.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ev)
	}
	fmt.Fprintf(env.Stdout, "%s on %s\n\n", args[0], f.data)
	return rep.WriteText(env.Stdout, ev.Findings)
}

var reportPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kerasgo evaluation: {{.Model}}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child{text-align:left}.finding{background:#fff7e0;border-left:4px solid #e0a000;padding:.5em 1em;margin:.5em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto}
.heat td{min-width:1.6em;text-align:center;font-size:80%}.rot{writing-mode:vertical-rl;font-weight:normal;font-size:80%}
.dist td.bars{width:24em;text-align:left}.bar{height:.45em;margin:1px 0}.bar.t{background:#aaa}.bar.p{background:rgb(31,119,180)}
.curves svg{max-width:100%;height:auto}</style></head><body>
<h1>Evaluation of {{.Model}}</h1>
<p>Data: <code>{{.Data}}</code>, {{.Report.Rows}} rows, {{len .Report.Classes}} classes{{if .Report.MultiLabel}} (multi-label){{end}}.</p>
<h2>Diagnosis</h2>
{{range .Findings}}<div class="finding"><b>{{.Kind}}</b>: {{.Text}}</div>{{end}}
<h2>Report</h2>
<pre>{{.Text}}</pre>
<h2>Predicted against true classes</h2>
<p>For each class, the rows {{if .Report.MultiLabel}}carrying it{{else}}of it{{end}} (true, grey) and the rows predicted as it (blue). A blue bar far longer than its grey one is a class the predictions collapse onto; a missing blue bar is a class never predicted.</p>
<table class="dist"><tr><th>class</th><th>true</th><th>predicted</th><th></th></tr>
{{range .Dist}}<tr><td>{{.Name}}</td><td>{{.True}}</td><td>{{.Predicted}}</td><td class="bars"><div class="bar t" style="width:{{printf "%.1f" .TrueWidth}}%"></div><div class="bar p" style="width:{{printf "%.1f" .PredWidth}}%"></div></td></tr>
{{end}}</table>
{{if .Curves}}<h2>Learning curves</h2>
<p>As recorded by <code>kerasgo train</code> in this model: epoch 0 is the model training started from; the dotted grey lines are what a model that learned nothing scores.</p>
<div class="curves">{{.Curves}}</div>{{end}}
{{if .Heat}}<h2>Confusion matrix</h2>
<p>Rows: true class; columns: predicted class (argmax). Darker cells hold more rows.</p>
<table class="heat"><tr><th></th>{{range .Report.Classes}}<th class="rot">{{.}}</th>{{end}}</tr>
{{range .Heat}}<tr><td>{{.Name}}</td>{{range .Cells}}<td style="background:rgba(31,119,180,{{printf "%.2f" .Alpha}})" title="{{.Count}}">{{if .Count}}{{.Count}}{{end}}</td>{{end}}</tr>
{{end}}</table>{{end}}
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{{range .Report.PerClass}}<tr><td>{{.Name}}</td><td>{{printf "%.3f" .Precision}}</td><td>{{printf "%.3f" .Recall}}</td><td>{{printf "%.3f" .F1}}</td><td>{{.Support}}</td></tr>
{{end}}</table>
</body></html>
`))

// writeHTMLReport writes the evaluation as one self-contained HTML page,
// with the learning curves when rec (the model's training record) is not nil.
func writeHTMLReport(path string, ev evaluationJSON, rec *fit.Record) error {
	var text strings.Builder
	if err := ev.Report.WriteText(&text, ev.Findings); err != nil {
		return err
	}
	var curvesSVG template.HTML
	if rec != nil && len(rec.Epochs) > 0 {
		var b strings.Builder
		if err := learningcurve.Render(&b, "svg", learningcurve.FromHistory(rec.Start, rec.Epochs)); err != nil {
			return fmt.Errorf("report %s: %w", path, err)
		}
		// Drawn by gonum/plot from numbers, not from user text: trusted markup.
		svg := b.String()
		if i := strings.Index(svg, "<svg"); i >= 0 {
			svg = svg[i:]
		}
		curvesSVG = template.HTML(svg)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	data := struct {
		evaluationJSON
		Text   string
		Heat   []heatRow
		Dist   []distRow
		Curves template.HTML
	}{ev, text.String(), heatmap(ev.Report), distribution(ev.Report), curvesSVG}
	if err := reportPage.Execute(f, data); err != nil {
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	return f.Commit()
}

// distRow is one class of the report's predicted-against-true chart.
type distRow struct {
	Name                 string
	True, Predicted      int
	TrueWidth, PredWidth float64 // bar lengths, percent of the longest
}

// distribution compares each class's true rows with its predicted rows.
func distribution(r evaluation.Report) []distRow {
	if len(r.PredictedCounts) != len(r.Classes) || len(r.Baselines.ClassCounts) != len(r.Classes) {
		return nil
	}
	most := 1
	for j := range r.Classes {
		most = max(most, r.PredictedCounts[j], r.Baselines.ClassCounts[j])
	}
	rows := make([]distRow, len(r.Classes))
	for j, name := range r.Classes {
		t, p := r.Baselines.ClassCounts[j], r.PredictedCounts[j]
		rows[j] = distRow{Name: name, True: t, Predicted: p,
			TrueWidth: 100 * float64(t) / float64(most), PredWidth: 100 * float64(p) / float64(most)}
	}
	return rows
}

// heatRow is one row of the report's confusion-matrix heat map.
type heatRow struct {
	Name  string
	Cells []heatCell
}

type heatCell struct {
	Count int
	Alpha float64 // shading, 0..1, relative to the row's size
}

// heatmap shades each confusion-matrix cell by its share of the true class's
// rows (single-label reports with at most 40 classes; nil otherwise).
func heatmap(r evaluation.Report) []heatRow {
	if len(r.Confusion) == 0 || len(r.Confusion) > 40 {
		return nil
	}
	rows := make([]heatRow, len(r.Confusion))
	for i, counts := range r.Confusion {
		total := 0
		for _, c := range counts {
			total += c
		}
		rows[i].Name = r.Classes[i]
		for _, c := range counts {
			alpha := 0.0
			if total > 0 {
				alpha = float64(c) / float64(total)
			}
			rows[i].Cells = append(rows[i].Cells, heatCell{Count: c, Alpha: alpha})
		}
	}
	return rows
}

// labelledSource is the model's source over a labelled file; a file in a
// format without labels is a usage error. With labels (a --labels file),
// a path that is not a labelled file (libsvm, JSONL) is request logs (a
// file, a directory or a log prefix) whose rows that file labels by id.
func labelledSource(env *Env, m *kerasgo.Model, path, labels string) (fit.Source, error) {
	if labels != "" && !rowio.FormatOf(path).Labelled() {
		return loggedSource(env, m, path, labels)
	}
	src, err := m.LabelledSource(path)
	if errors.Is(err, rowio.ErrUnknownFormat) {
		return nil, usagef("%v", err)
	}
	return src, err
}

// loggedSource is the labelled rows of request logs, joined with a labels
// file by request id; the first pass says how many rows were labelled.
func loggedSource(env *Env, m *kerasgo.Model, path, labelsPath string) (fit.Source, error) {
	paths, err := requestlog.Paths(path)
	if err != nil {
		return nil, err
	}
	labels, err := requestlog.ReadLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	src, err := requestlog.LabelledSource(paths, labels, rowio.ReaderOptions{Dim: m.InputDim(), Vectorizer: m.Vectorizer(), Sparse: true}, func(c requestlog.Counts) {
		once.Do(func() {
			fmt.Fprintf(env.Stderr, "kerasgo: %s: %d logged rows labelled by %s, %d without a label left out", path, c.Labelled, labelsPath, c.Unlabelled)
			if c.Skipped > 0 {
				fmt.Fprintf(env.Stderr, ", %d records that are not Predict requests of one tensor skipped", c.Skipped)
			}
			fmt.Fprintln(env.Stderr)
		})
	})
	if err != nil {
		return nil, err
	}
	return fit.Source(src), nil
}
