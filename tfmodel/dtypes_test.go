package tfmodel_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/x448/float16"

	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// TestDTypes feeds every fixed-width dtype to testdata/models/dtypes, which
// TensorFlow made (scripts/make_dtypes_model.py), and compares each output
// with what TensorFlow answered for the same inputs: the values cross into
// and out of TensorFlow bit for bit, float16 included, and each output
// keeps its dtype.
func TestDTypes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testdata, "golden", "dtypes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Inputs, Outputs map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	m, err := tfmodel.Load(context.Background(), filepath.Join(testdata, "models", "dtypes"), tfmodel.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	inputs := map[string]tensor.Tensor{}
	for name, raw := range golden.Inputs {
		inputs["x_"+name] = goldenTensor(t, tensor.DType(name), raw)
	}
	got, err := m.RunTensors(context.Background(), tfmodel.DefaultPredictSignature, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(golden.Outputs) {
		t.Errorf("%d outputs, want %d", len(got), len(golden.Outputs))
	}
	for name, raw := range golden.Outputs {
		dtype := tensor.DType(name[len("y_"):])
		want := goldenTensor(t, dtype, raw)
		if g := got[name]; g.DType != dtype || !reflect.DeepEqual(g.Shape, want.Shape) || !reflect.DeepEqual(g.Data, want.Data) {
			t.Errorf("%s: %s %v %v, TensorFlow gave %s %v %v", name, g.DType, g.Shape, g.Data, dtype, want.Shape, want.Data)
		}
	}
}

// goldenTensor reads a JSON list as a [n] tensor of dtype d (float16 from
// its float values, which the golden file holds exactly).
func goldenTensor(t *testing.T, d tensor.DType, raw json.RawMessage) tensor.Tensor {
	t.Helper()
	data := d.MakeData(0)
	if d == tensor.Float16 {
		data = []float32{}
	}
	p := reflect.New(reflect.TypeOf(data))
	if err := json.Unmarshal(raw, p.Interface()); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	data = p.Elem().Interface()
	if f, ok := data.([]float32); ok && d == tensor.Float16 {
		h := make([]float16.Float16, len(f))
		for i, v := range f {
			h[i] = float16.Fromfloat32(v)
		}
		data = h
	}
	return tensor.Tensor{DType: d, Shape: []int64{int64(tensor.Len(data))}, Data: data}
}
