package tensor_test

import (
	"fmt"
	"testing"

	"github.com/kerasgo/kerasgo/tensor"
)

func TestSpecString(t *testing.T) {
	for _, tc := range []struct {
		spec tensor.Spec
		want string
	}{
		{tensor.Spec{DType: tensor.Float32, Shape: []int64{-1, 256}}, "float32[?,256]"},
		{tensor.Spec{DType: tensor.String, Shape: []int64{}}, "string[]"},
		{tensor.Spec{DType: tensor.Int64}, "int64[?]"},
	} {
		if got := tc.spec.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		shape []int64
		want  int64
	}{{nil, 1}, {[]int64{3}, 3}, {[]int64{2, 0, 5}, 0}, {[]int64{4, 256}, 1024}} {
		if got := (tensor.Tensor{Shape: tc.shape}).Elements(); got != tc.want {
			t.Errorf("Elements of %v = %d, want %d", tc.shape, got, tc.want)
		}
	}
}

func TestCloneSharesNothing(t *testing.T) {
	sig := tensor.Signature{
		Inputs:  map[string]tensor.Spec{"x": {Name: "x:0", DType: tensor.Float32, Shape: []int64{-1, 3}}},
		Outputs: map[string]tensor.Spec{"y": {Name: "y:0", DType: tensor.Float32, Shape: []int64{-1, 2}}},
	}
	c := sig.Clone()
	c.Inputs["x"].Shape[1] = 99
	c.Outputs["z"] = tensor.Spec{}
	if sig.Inputs["x"].Shape[1] != 3 || len(sig.Outputs) != 1 {
		t.Errorf("changing the clone changed the original: %+v", sig)
	}
}

func ExampleSignature() {
	sig := tensor.Signature{
		Key:        "serving_default",
		MethodName: "tensorflow/serving/predict",
		Inputs: map[string]tensor.Spec{
			"words": {Name: "serving_default_words:0", DType: tensor.Float32, Shape: []int64{-1, 10000}},
		},
		Outputs: map[string]tensor.Spec{
			"output_0": {Name: "StatefulPartitionedCall:0", DType: tensor.Float32, Shape: []int64{-1, 20}},
		},
	}
	for _, name := range sig.InputNames() {
		fmt.Println("input", name, sig.Inputs[name])
	}
	for _, name := range sig.OutputNames() {
		fmt.Println("output", name, sig.Outputs[name])
	}
	// Output:
	// input words float32[?,10000]
	// output output_0 float32[?,20]
}
