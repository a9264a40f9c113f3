// Package tensor describes tensors and SavedModel signatures without linking
// TensorFlow: a dtype, a dense tensor of any rank, one input or output of a
// signature, and a signature itself.
//
// tfmodel reads these from a SavedModel and runs on them; serving decodes
// them from TF Serving's JSON and protobuf requests and encodes the answers.
// Both use these types, so a tensor crosses from one to the other as it is.
package tensor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DType is a tensor element type, named as TensorFlow's Python API and TF
// Serving's JSON name it.
type DType string

// The element types kerasgo feeds and fetches.
const (
	Float32 DType = "float32"
	Float64 DType = "float64"
	Int32   DType = "int32"
	Int64   DType = "int64"
	String  DType = "string"
	Bool    DType = "bool"
)

// Tensor is a dense tensor of any rank: Data holds the elements flat, in
// row-major order, as []float32, []float64, []int32, []int64, []bool or
// [][]byte (for String), and Shape their dimensions (empty for a scalar).
type Tensor struct {
	DType DType
	Shape []int64
	Data  any
}

// Elements returns the number of elements Shape implies.
func (t Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Spec describes one input or output of a signature.
type Spec struct {
	// Name is the graph tensor, "op:index".
	Name  string
	DType DType
	// Shape has -1 for unknown dimensions; nil means unknown rank.
	Shape []int64
	// NoShape says the SignatureDef records no tensor_shape at all: an
	// unknown rank too, but TF Serving's metadata tells the two apart.
	NoShape bool
}

// String returns the dtype and shape, "float32[?,256]", with "?" for an
// unknown dimension and "float32[?]" for an unknown rank.
func (s Spec) String() string {
	if s.Shape == nil {
		return fmt.Sprintf("%s[?]", s.DType)
	}
	dims := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s[%s]", s.DType, strings.Join(dims, ","))
}

// Signature is one entry of a SavedModel's signature_def map.
type Signature struct {
	Key        string
	MethodName string
	Inputs     map[string]Spec
	Outputs    map[string]Spec
}

// InputNames returns the input keys in sorted order.
func (s Signature) InputNames() []string { return slices.Sorted(maps.Keys(s.Inputs)) }

// OutputNames returns the output keys in sorted order.
func (s Signature) OutputNames() []string { return slices.Sorted(maps.Keys(s.Outputs)) }

// Clone returns a copy of s that shares no maps or slices with it.
func (s Signature) Clone() Signature {
	s.Inputs, s.Outputs = cloneSpecs(s.Inputs), cloneSpecs(s.Outputs)
	return s
}

func cloneSpecs(specs map[string]Spec) map[string]Spec {
	if specs == nil {
		return nil
	}
	out := make(map[string]Spec, len(specs))
	for k, s := range specs {
		s.Shape = slices.Clone(s.Shape)
		out[k] = s
	}
	return out
}
