package fit_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/rowio"
)

func TestReadClassWeights(t *testing.T) {
	labels := fit.NewLabelParser([]string{"cat", "dog", "emu"}, false)
	tests := map[string]struct {
		in       string
		want     []float32
		wantLine int
		field    string
	}{
		"names and indices":         {in: "cat 2\n# comment\n\n2 0.5\n", want: []float32{2, 1, 0.5}},
		"none named":                {in: "", want: []float32{1, 1, 1}},
		"unknown class":             {in: "cat 2\nyak 3\n", wantLine: 2, field: "class"},
		"negative weight":           {in: "dog -1\n", wantLine: 1, field: "weight"},
		"not a number":              {in: "dog lots\n", wantLine: 1, field: "weight"},
		"three fields":              {in: "dog 1 2\n", wantLine: 1},
		"infinite weight":           {in: "emu +Inf\n", wantLine: 1, field: "weight"},
		"index past the last class": {in: "3 1\n", wantLine: 1, field: "class"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := fit.ReadClassWeights(strings.NewReader(tc.in), "w.txt", labels)
			if tc.wantLine == 0 {
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf("weights %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			var pe *rowio.ParseError
			if !errors.As(err, &pe) || pe.Path != "w.txt" || pe.Line != tc.wantLine || pe.Field != tc.field || !errors.Is(err, rowio.ErrFormat) {
				t.Fatalf("error %v, want a ParseError at w.txt:%d field %q", err, tc.wantLine, tc.field)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if rec, err := fit.ReadRecord(dir); rec != nil || err != nil {
		t.Fatalf("a model without a record: %v, %v", rec, err)
	}
	start := &evaluation.Report{Rows: 3, Loss: 0.5}
	res := fit.Result{Start: start, History: []fit.Epoch{{Epoch: 1, Steps: 2, TrainLoss: 0.4, Val: &evaluation.Report{Rows: 3, Loss: 0.45}}}}
	if err := fit.WriteRecord(filepath.Join(dir, "m"), res); err != nil {
		t.Fatal(err)
	}
	rec, err := fit.ReadRecord(filepath.Join(dir, "m"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Start == nil || rec.Start.Loss != 0.5 || len(rec.Epochs) != 1 || rec.Epochs[0].Val.Loss != 0.45 {
		t.Fatalf("record %+v", rec)
	}
}
