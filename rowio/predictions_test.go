package rowio_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

type prediction struct {
	id    string
	probs []float32
}

func TestCSVPredictionWriter(t *testing.T) {
	tests := map[string]struct {
		opts  rowio.PredictionOptions
		preds []prediction
		want  string
	}{
		"single-label argmax": {
			opts:  rowio.PredictionOptions{Classes: []string{"cat", "dog", "bird"}},
			preds: []prediction{{"a", []float32{0.1, 0.7, 0.2}}, {"b", []float32{0.5, 0.2, 0.3}}, {"c", []float32{0, 0.25, 0.75}}},
			want: "id,label,score,p_cat,p_dog,p_bird\n" +
				"a,dog,0.7,0.1,0.7,0.2\n" +
				"b,cat,0.5,0.5,0.2,0.3\n" +
				"c,bird,0.75,0,0.25,0.75\n",
		},
		"single-label tie picks the first class": {
			opts:  rowio.PredictionOptions{Classes: []string{"x", "y", "z"}},
			preds: []prediction{{"t", []float32{0.2, 0.4, 0.4}}},
			want:  "id,label,score,p_x,p_y,p_z\nt,y,0.4,0.2,0.4,0.4\n",
		},
		"single-label ignores the threshold": {
			opts:  rowio.PredictionOptions{Classes: []string{"x", "y"}, Threshold: 0.9},
			preds: []prediction{{"t", []float32{0.3, 0.1}}},
			want:  "id,label,score,p_x,p_y\nt,x,0.3,0.3,0.1\n",
		},
		"default class names": {
			preds: []prediction{{"1", []float32{0.2, 0.8}}, {"2", []float32{0.6, 0.4}}},
			want:  "id,label,score,p_class_0,p_class_1\n1,class_1,0.8,0.2,0.8\n2,class_0,0.6,0.6,0.4\n",
		},
		"multi-label default threshold": {
			opts: rowio.PredictionOptions{Classes: []string{"a", "b", "c"}, MultiLabel: true},
			preds: []prediction{
				{"r1", []float32{0.9, 0.2, 0.6}},
				{"r2", []float32{0.1, 0.2, 0.3}},
				{"r3", []float32{0.5, 0.49, 0.1}},
				{"r4", []float32{0.7, 0.8, 0.9}},
			},
			want: "id,label,score,p_a,p_b,p_c\n" +
				"r1,a|c,0.9,0.9,0.2,0.6\n" +
				"r2,,0.3,0.1,0.2,0.3\n" +
				"r3,a,0.5,0.5,0.49,0.1\n" +
				"r4,a|b|c,0.9,0.7,0.8,0.9\n",
		},
		"multi-label custom threshold": {
			opts:  rowio.PredictionOptions{Classes: []string{"a", "b", "c"}, MultiLabel: true, Threshold: 0.25},
			preds: []prediction{{"r", []float32{0.3, 0.2, 0.25}}},
			want:  "id,label,score,p_a,p_b,p_c\nr,a|c,0.3,0.3,0.2,0.25\n",
		},
		"multi-label default class names": {
			opts:  rowio.PredictionOptions{MultiLabel: true},
			preds: []prediction{{"r", []float32{0.6, 0.1, 0.95}}},
			want:  "id,label,score,p_class_0,p_class_1,p_class_2\nr,class_0|class_2,0.95,0.6,0.1,0.95\n",
		},
		"ids and class names are quoted": {
			opts:  rowio.PredictionOptions{Classes: []string{"a,b", "c"}},
			preds: []prediction{{`x "y"`, []float32{0.75, 0.25}}, {"p,q", []float32{0.25, 0.75}}},
			want:  "id,label,score,\"p_a,b\",p_c\n\"x \"\"y\"\"\",\"a,b\",0.75,0.75,0.25\n\"p,q\",c,0.75,0.25,0.75\n",
		},
		"float32 values printed shortest": {
			opts:  rowio.PredictionOptions{Classes: []string{"a", "b"}},
			preds: []prediction{{"r", []float32{0.1, 1.0 / 3}}},
			want:  "id,label,score,p_a,p_b\nr,b,0.3333333,0.1,0.3333333\n",
		},
		"no predictions": {
			opts: rowio.PredictionOptions{Classes: []string{"a"}},
			want: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			w := rowio.NewCSVPredictionWriter(&b, tc.opts)
			for _, p := range tc.preds {
				if err := w.Write(p.id, p.probs); err != nil {
					t.Fatalf("Write(%q): %v", p.id, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("output\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestCSVPredictionWriterLengthMismatch(t *testing.T) {
	tests := map[string]struct {
		before []prediction // written successfully first
		bad    []float32
		want   string // output after the bad write and Flush
	}{
		"first write too short": {
			bad:  []float32{0.5},
			want: "",
		},
		"first write too long": {
			bad:  []float32{0.1, 0.2, 0.7},
			want: "",
		},
		"later write": {
			before: []prediction{{"ok", []float32{0.25, 0.75}}},
			bad:    []float32{1},
			want:   "id,label,score,p_a,p_b\nok,b,0.75,0.25,0.75\n",
		},
		"empty probabilities": {
			bad:  nil,
			want: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			w := rowio.NewCSVPredictionWriter(&b, rowio.PredictionOptions{Classes: []string{"a", "b"}})
			for _, p := range tc.before {
				if err := w.Write(p.id, p.probs); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Write("bad", tc.bad); err == nil {
				t.Errorf("Write of %d probabilities for 2 classes succeeded", len(tc.bad))
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("output\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// failingWriter fails every write.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestCSVPredictionWriterPropagatesWriteErrors(t *testing.T) {
	tests := map[string]struct {
		classes    int
		errAtFlush bool // small output stays buffered until Flush
	}{
		"reported by Flush": {classes: 2, errAtFlush: true},
		"reported by Write": {classes: 5000, errAtFlush: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			boom := errors.New("disk full")
			w := rowio.NewCSVPredictionWriter(failingWriter{boom}, rowio.PredictionOptions{})
			probs := make([]float32, tc.classes)
			for i := range probs {
				probs[i] = 0.123456
			}
			werr := w.Write("r", probs)
			ferr := w.Flush()
			if tc.errAtFlush && werr != nil {
				t.Errorf("Write: %v, want the error from Flush", werr)
			}
			if !tc.errAtFlush && !errors.Is(werr, boom) {
				t.Errorf("Write error = %v, want it to wrap %v", werr, boom)
			}
			if !errors.Is(ferr, boom) {
				t.Errorf("Flush error = %v, want it to wrap %v", ferr, boom)
			}
		})
	}
}

func TestCSVPredictionWriterTopK(t *testing.T) {
	var b strings.Builder
	w := rowio.NewCSVPredictionWriter(&b, rowio.PredictionOptions{Classes: []string{"a", "b", "c", "d"}, TopK: 2})
	for _, p := range []prediction{{"1", []float32{0.1, 0.6, 0.05, 0.25}}, {"2", []float32{0.3, 0.3, 0.4, 0}}} {
		if err := w.Write(p.id, p.probs); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "id,label,score,top1_label,top1_p,top2_label,top2_p\n" +
		"1,b,0.6,b,0.6,d,0.25\n" +
		"2,c,0.4,c,0.4,a,0.3\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestJSONLPredictionWriter(t *testing.T) {
	type line struct {
		ID            string              `json:"id"`
		Label         *string             `json:"label"`
		Labels        []string            `json:"labels"`
		Score         *float64            `json:"score"`
		Probabilities map[string]*float64 `json:"probabilities"`
		TopK          []struct {
			Label string  `json:"label"`
			P     float64 `json:"p"`
		} `json:"top_k"`
	}
	tests := map[string]struct {
		opts  rowio.PredictionOptions
		probs []float32
		check func(t *testing.T, l line)
	}{
		"single-label": {opts: rowio.PredictionOptions{Classes: []string{"x", `q"uote`}}, probs: []float32{0.25, 0.75},
			check: func(t *testing.T, l line) {
				if l.Label == nil || *l.Label != `q"uote` || *l.Score != 0.75 || *l.Probabilities["x"] != 0.25 {
					t.Fatalf("%+v", l)
				}
			}},
		"multi-label": {opts: rowio.PredictionOptions{MultiLabel: true}, probs: []float32{0.9, 0.1, 0.6},
			check: func(t *testing.T, l line) {
				if l.Label != nil || len(l.Labels) != 2 || l.Labels[0] != "class_0" || l.Labels[1] != "class_2" {
					t.Fatalf("%+v", l)
				}
			}},
		"top-k": {opts: rowio.PredictionOptions{TopK: 1}, probs: []float32{0.2, 0.7, 0.1},
			check: func(t *testing.T, l line) {
				if len(l.TopK) != 1 || l.TopK[0].Label != "class_1" || l.TopK[0].P != 0.7 || l.Probabilities != nil {
					t.Fatalf("%+v", l)
				}
			}},
		"NaN becomes null": {probs: []float32{float32(math.NaN()), 0.5},
			check: func(t *testing.T, l line) {
				if l.Probabilities["class_0"] != nil || *l.Probabilities["class_1"] != 0.5 {
					t.Fatalf("%+v", l)
				}
			}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			w := rowio.NewJSONLPredictionWriter(&b, tc.opts)
			if err := w.Write("id-1", tc.probs); err != nil {
				t.Fatal(err)
			}
			if err := w.Write("id-2", tc.probs[:1]); err == nil {
				t.Fatal("a row of another width was accepted")
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			var l line
			if err := json.Unmarshal([]byte(b.String()), &l); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b.String())
			}
			if l.ID != "id-1" || strings.Count(b.String(), "\n") != 1 {
				t.Fatalf("output %q", b.String())
			}
			tc.check(t, l)
		})
	}
}

func TestParseOutputFormat(t *testing.T) {
	for _, tc := range []struct {
		name, s, path string
		want          rowio.OutputFormat
		ok            bool
	}{
		{"named csv", "csv", "out.jsonl", rowio.OutputCSV, true},
		{"named jsonl", "jsonl", "out.csv", rowio.OutputJSONL, true},
		{"by extension", "", "out.JSONL", rowio.OutputJSONL, true},
		{"ndjson", "", "out.ndjson", rowio.OutputJSONL, true},
		{"standard output", "", "-", rowio.OutputCSV, true},
		{"another extension", "", "out.txt", rowio.OutputCSV, true},
		{"unknown", "parquet", "out.parquet", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rowio.ParseOutputFormat(tc.s, tc.path)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseOutputFormat(%q, %q) = %q, %v; want %q (ok %v)", tc.s, tc.path, got, err, tc.want, tc.ok)
			}
		})
	}
}
