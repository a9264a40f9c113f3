package requestlog_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// predictLog is the record of a Predict request of rows (n × d) under id,
// answered by version 3 with out (n × c).
func predictLog(t testing.TB, id string, in tensor.Tensor, out []float32, c int64) []byte {
	t.Helper()
	inp, err := tensorproto.ToProto(in)
	if err != nil {
		t.Fatal(err)
	}
	outp, err := tensorproto.ToProto(tensor.Tensor{DType: tensor.Float32, Shape: []int64{int64(len(out)) / c, c}, Data: out})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&tfservingpb.PredictionLog{
		LogMetadata: &tfservingpb.LogMetadata{RequestOrigin: id, ModelSpec: &tfservingpb.ModelSpec{Name: "m", VersionChoice: &tfservingpb.ModelSpec_Version{Version: wrapperspb.Int64(3)}}},
		LogType: &tfservingpb.PredictionLog_PredictLog{PredictLog: &tfservingpb.PredictLog{
			Request:  &tfservingpb.PredictRequest{Inputs: map[string]*tensorpb.TensorProto{"x": inp}},
			Response: &tfservingpb.PredictResponse{Outputs: map[string]*tensorpb.TensorProto{"y": outp}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sink records what a Comparison passes on.
type sink struct{ ids []string }

func (s *sink) Write(id string, _ []float32) error { s.ids = append(s.ids, id); return nil }
func (s *sink) Flush() error                       { return nil }

// TestRowReaderAndComparison reads a log of two Predict requests (one of
// two rows), a Classify request and a torn last record as rows, and
// compares new predictions with the logged answers.
func TestRowReaderAndComparison(t *testing.T) {
	rows := func(n int64, data ...float32) tensor.Tensor {
		return tensor.Tensor{DType: tensor.Float32, Shape: []int64{n, int64(len(data)) / n}, Data: data}
	}
	classify, err := proto.Marshal(&tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_ClassifyLog{ClassifyLog: &tfservingpb.ClassifyLog{}}})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	w := tfrecord.NewWriter(&file)
	for _, rec := range [][]byte{
		predictLog(t, "a", rows(1, 1, 2), []float32{0.9, 0.1}, 2),
		classify,
		predictLog(t, "b", rows(2, 3, 4, 5, 6), []float32{0.2, 0.8, 0.6, 0.4}, 2),
		predictLog(t, "c", rows(1, 7, 8), []float32{0.3, 0.7}, 2),
	} {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	data := file.Bytes()[:file.Len()-5] // "c" is torn

	lr := requestlog.NewRowReader(bytes.NewReader(data), "log.tfrecord", rowio.ReaderOptions{Dim: 2})
	var out sink
	cmp := requestlog.NewComparison(&out, lr)
	// The new model's answers: the same class for a, another for b#0 and b#1.
	now := map[string][]float32{"a": {0.8, 0.2}, "b#0": {0.7, 0.3}, "b#1": {0.1, 0.9}}
	var got []string
	var features [][]float32
	for {
		var row rowio.Row
		err := lr.Read(&row)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row.ID)
		features = append(features, slices.Clone(row.Features))
		if err := cmp.Write(row.ID, now[row.ID]); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a", "b#0", "b#1"}; !slices.Equal(got, want) || !slices.Equal(out.ids, want) {
		t.Fatalf("rows %v, passed on %v; want %v", got, out.ids, want)
	}
	if !slices.Equal(features[2], []float32{5, 6}) || lr.Skipped != 1 || !lr.Torn {
		t.Errorf("features %v, skipped %d, torn %v; want b#1 = [5 6], 1 skipped, torn", features, lr.Skipped, lr.Torn)
	}
	if cmp.Rows != 3 || cmp.Differ != 2 || cmp.Changes[[2]int{1, 0}] != 1 || cmp.Changes[[2]int{0, 1}] != 1 {
		t.Errorf("rows %d, differ %d, changes %v", cmp.Rows, cmp.Differ, cmp.Changes)
	}
	report := cmp.Report([]string{"no", "yes"})
	for _, want := range []string{"m version 3: 3 rows", "differs on 2 of 3 rows (66.7%)", "no -> yes (1)", "yes -> no (1)"} {
		if !strings.Contains(report, want) {
			t.Errorf("report %q does not say %q", report, want)
		}
	}
}

// TestRowReaderErrors: a record that is not a PredictionLog, or rows of
// another width, is a parse error naming the file and record.
func TestRowReaderErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		record []byte
		says   string
	}{
		{"not a PredictionLog", []byte{0xff, 0xff, 0xff}, "log.tfrecord:1: not a tensorflow.serving.PredictionLog"},
		{"wrong width", predictLog(t, "a", tensor.Tensor{DType: tensor.Float32, Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}, []float32{1}, 1), "log.tfrecord:1: field inputs: rows of 3 features, want 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var file bytes.Buffer
			if err := tfrecord.NewWriter(&file).Write(c.record); err != nil {
				t.Fatal(err)
			}
			var row rowio.Row
			err := requestlog.NewRowReader(&file, "log.tfrecord", rowio.ReaderOptions{Dim: 2}).Read(&row)
			var pe *rowio.ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v, want a parse error saying %q", err, c.says)
			}
		})
	}
}

// TestReadLabels reads labels by id and refuses, naming the line and
// field, what it cannot join on.
func TestReadLabels(t *testing.T) {
	for _, c := range []struct {
		name, csv string
		want      map[string][]string
		says      string
	}{
		{"ok", "label,id\nwork,a\n\"art,work\",b#1\n", map[string][]string{"a": {"work"}, "b#1": {"art", "work"}}, ""},
		{"no id column", "request,label\na,work\n", nil, "labels.csv:1: the header"},
		{"empty label", "id,label\na,\n", nil, "labels.csv:2: field label: empty"},
		{"labelled twice", "id,label\na,x\nb,y\na,z\n", nil, `labels.csv:4: field id: "a" is labelled twice`},
		{"short row", "id,label\na\n", nil, "labels.csv:2: 1 fields"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "labels.csv")
			if err := os.WriteFile(path, []byte(c.csv), 0o666); err != nil {
				t.Fatal(err)
			}
			got, err := requestlog.ReadLabels(path)
			if c.says != "" {
				if err == nil || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("%v, want an error saying %q", err, c.says)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%v, %v; want %v", got, err, c.want)
			}
		})
	}
}

// TestLabelledSource joins two log files with labels: the labelled rows,
// in order, on every pass, and the counts of the rest.
func TestLabelledSource(t *testing.T) {
	dir := t.TempDir()
	for i, recs := range [][][]byte{
		{predictLog(t, "a", tensor.Tensor{DType: tensor.Float32, Shape: []int64{2, 1}, Data: []float32{1, 2}}, []float32{0, 1}, 1)},
		{predictLog(t, "b", tensor.Tensor{DType: tensor.Float32, Shape: []int64{1, 1}, Data: []float32{3}}, []float32{0}, 1)},
	} {
		var file bytes.Buffer
		for _, r := range recs {
			if err := tfrecord.NewWriter(&file).Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m-%d.tfrecord", i)), file.Bytes(), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := requestlog.Paths(dir)
	if err != nil || len(paths) != 2 {
		t.Fatalf("%v %v", paths, err)
	}
	var counts []requestlog.Counts
	src, err := requestlog.LabelledSource(paths, map[string][]string{"a#1": {"x"}, "b": {"y"}}, rowio.ReaderOptions{Dim: 1}, func(c requestlog.Counts) { counts = append(counts, c) })
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		r, closer, err := src()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			var row rowio.Row
			if err := r.Read(&row); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprint(row.ID, row.Features, row.Labels))
		}
		closer.Close()
		if want := []string{"a#1[2] [x]", "b[3] [y]"}; !slices.Equal(got, want) {
			t.Errorf("pass %d: %v, want %v", pass, got, want)
		}
	}
	if want := (requestlog.Counts{Labelled: 2, Unlabelled: 1}); len(counts) != 2 || counts[0] != want {
		t.Errorf("counts %v, want %v on each pass", counts, want)
	}
}
