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
	"reflect"
	"slices"
	"strings"

	"github.com/x448/float16"
)

// DType is a tensor element type, named as TensorFlow's Python API and TF
// Serving's JSON name it.
type DType string

// The element types kerasgo feeds and fetches.
const (
	Float16 DType = "float16"
	Float32 DType = "float32"
	Float64 DType = "float64"
	Int8    DType = "int8"
	Int16   DType = "int16"
	Int32   DType = "int32"
	Int64   DType = "int64"
	Uint8   DType = "uint8"
	Uint16  DType = "uint16"
	Uint32  DType = "uint32"
	Uint64  DType = "uint64"
	String  DType = "string"
	Bool    DType = "bool"
)

// known returns the DTypes above, for the lookups by another system's name.
func known() [13]DType {
	return [...]DType{Float16, Float32, Float64, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, String, Bool}
}

// names gives d's names in TensorFlow's DataType enum and in the Open
// Inference Protocol, and the bytes an element takes in TensorFlow's memory
// and the protocol's raw layout (0 for String, whose elements vary).
func (d DType) names() (tf, oip string, width int64) {
	switch d {
	case Float16:
		return "DT_HALF", "FP16", 2
	case Float32:
		return "DT_FLOAT", "FP32", 4
	case Float64:
		return "DT_DOUBLE", "FP64", 8
	case Int8:
		return "DT_INT8", "INT8", 1
	case Int16:
		return "DT_INT16", "INT16", 2
	case Int32:
		return "DT_INT32", "INT32", 4
	case Int64:
		return "DT_INT64", "INT64", 8
	case Uint8:
		return "DT_UINT8", "UINT8", 1
	case Uint16:
		return "DT_UINT16", "UINT16", 2
	case Uint32:
		return "DT_UINT32", "UINT32", 4
	case Uint64:
		return "DT_UINT64", "UINT64", 8
	case String:
		return "DT_STRING", "BYTES", 0
	case Bool:
		return "DT_BOOL", "BOOL", 1
	}
	return "", "", 0
}

// Width returns the bytes one element of d takes in TensorFlow's memory
// and in little-endian raw layouts: 0 for String, whose elements vary, and
// for a dtype kerasgo does not know.
func (d DType) Width() int64 { _, _, w := d.names(); return w }

// TFName returns the name of d in TensorFlow's DataType enum ("DT_FLOAT"
// for Float32): for a dtype kerasgo does not know, "DT_" and its name in
// upper case, which is how FromTFName made it.
func (d DType) TFName() string {
	if tf, _, _ := d.names(); tf != "" {
		return tf
	}
	return "DT_" + strings.ToUpper(string(d))
}

// FromTFName returns the DType of a name in TensorFlow's DataType enum
// ("DT_FLOAT" is Float32). A dtype kerasgo does not feed ("DT_BFLOAT16")
// comes back as its name in lower case without "DT_" ("bfloat16"), which
// describes a signature but holds no data.
func FromTFName(name string) DType {
	for _, d := range known() {
		if tf, _, _ := d.names(); tf == name {
			return d
		}
	}
	return DType(strings.ToLower(strings.TrimPrefix(name, "DT_")))
}

// MakeData returns n zero elements of d: []float32 for Float32 and so on,
// as Tensor.Data holds them, or nil for a dtype kerasgo does not know.
func (d DType) MakeData(n int) any {
	switch d {
	case Float16:
		return make([]float16.Float16, n)
	case Float32:
		return make([]float32, n)
	case Float64:
		return make([]float64, n)
	case Int8:
		return make([]int8, n)
	case Int16:
		return make([]int16, n)
	case Int32:
		return make([]int32, n)
	case Int64:
		return make([]int64, n)
	case Uint8:
		return make([]uint8, n)
	case Uint16:
		return make([]uint16, n)
	case Uint32:
		return make([]uint32, n)
	case Uint64:
		return make([]uint64, n)
	case String:
		return make([][]byte, n)
	case Bool:
		return make([]bool, n)
	}
	return nil
}

// Len returns the number of elements in a Tensor's Data, or -1 when data
// is not a slice.
func Len(data any) int {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Slice {
		return -1
	}
	return v.Len()
}

// Tensor is a dense tensor of any rank: Data holds the elements flat, in
// row-major order, as DType.MakeData makes them ([]float32 for Float32,
// [][]byte for String, []float16.Float16 from github.com/x448/float16 for
// Float16), and Shape their dimensions (empty for a scalar).
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
