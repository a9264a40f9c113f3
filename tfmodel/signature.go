package tfmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// initOpSignature is the pseudo-signature TF2 SavedModels use for their init op.
const initOpSignature = "__saved_model_init_op"

// DType is a tensor element type.
type DType string

// Element types kerasgo feeds and fetches.
const (
	Float32 DType = "float32"
	Float64 DType = "float64"
	Int32   DType = "int32"
	Int64   DType = "int64"
	String  DType = "string"
	Bool    DType = "bool"
)

func dtypeFromProto(t typespb.DataType) DType {
	switch t {
	case typespb.DataType_DT_FLOAT:
		return Float32
	case typespb.DataType_DT_DOUBLE:
		return Float64
	case typespb.DataType_DT_INT32:
		return Int32
	case typespb.DataType_DT_INT64:
		return Int64
	case typespb.DataType_DT_STRING:
		return String
	case typespb.DataType_DT_BOOL:
		return Bool
	}
	return DType(strings.ToLower(strings.TrimPrefix(t.String(), "DT_")))
}

// TensorSpec describes one input or output of a signature.
type TensorSpec struct {
	// Tensor is the graph tensor, "op:index".
	Tensor string
	DType  DType
	// Shape has -1 for unknown dimensions; nil means unknown rank.
	Shape []int64
	// NoShape says the SignatureDef records no tensor_shape at all (an
	// unknown rank too, but TF Serving's metadata tells the two apart).
	NoShape bool
}

func (t TensorSpec) String() string {
	if t.Shape == nil {
		return fmt.Sprintf("%s[?]", t.DType)
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s[%s]", t.DType, strings.Join(dims, ","))
}

// Signature is one entry of a SavedModel's signature_def map.
type Signature struct {
	Key        string
	MethodName string
	Inputs     map[string]TensorSpec
	Outputs    map[string]TensorSpec
}

// clone returns a copy of s that shares no maps or slices with it.
func (s Signature) clone() Signature {
	s.Inputs, s.Outputs = cloneSpecs(s.Inputs), cloneSpecs(s.Outputs)
	return s
}

func cloneSpecs(specs map[string]TensorSpec) map[string]TensorSpec {
	if specs == nil {
		return nil
	}
	out := make(map[string]TensorSpec, len(specs))
	for k, t := range specs {
		t.Shape = slices.Clone(t.Shape)
		out[k] = t
	}
	return out
}

// InputNames returns the input keys in sorted order.
func (s Signature) InputNames() []string { return sortedKeys(s.Inputs) }

// OutputNames returns the output keys in sorted order.
func (s Signature) OutputNames() []string { return sortedKeys(s.Outputs) }

func sortedKeys(m map[string]TensorSpec) []string { return slices.Sorted(maps.Keys(m)) }

func specFromProto(pb *corepb.TensorInfo) TensorSpec {
	spec := TensorSpec{Tensor: pb.GetName(), DType: dtypeFromProto(pb.GetDtype()), NoShape: pb.GetTensorShape() == nil}
	if shape := pb.GetTensorShape(); shape != nil && !shape.GetUnknownRank() {
		spec.Shape = make([]int64, len(shape.GetDim()))
		for i, d := range shape.GetDim() {
			spec.Shape[i] = d.GetSize()
		}
	}
	return spec
}

// readMetaGraph parses saved_model.pb and returns the MetaGraph whose tag set
// equals tags (in any order).
func readMetaGraph(dir string, tags []string) (*corepb.MetaGraphDef, error) {
	path := filepath.Join(dir, "saved_model.pb")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, txtErr := os.Stat(filepath.Join(dir, "saved_model.pbtxt")); txtErr == nil {
			return nil, fmt.Errorf("%s: text SavedModels (saved_model.pbtxt) are not supported: %w", dir, ErrNotSavedModel)
		}
		return nil, fmt.Errorf("%s: no saved_model.pb: %w", dir, ErrNotSavedModel)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var sm corepb.SavedModel
	if err := proto.Unmarshal(b, &sm); err != nil {
		return nil, fmt.Errorf("parsing %s: %v: %w", path, err, ErrNotSavedModel)
	}
	want := slices.Sorted(slices.Values(tags))
	var seen []string
	for _, mg := range sm.GetMetaGraphs() {
		have := slices.Sorted(slices.Values(mg.GetMetaInfoDef().GetTags()))
		if slices.Equal(have, want) {
			return mg, nil
		}
		seen = append(seen, "{"+strings.Join(have, ",")+"}")
	}
	return nil, fmt.Errorf("%s: tags {%s}, have %s: %w", dir, strings.Join(want, ","), strings.Join(seen, " "), ErrUnknownTag)
}

// withoutInitOp drops the __saved_model_init_op pseudo-signature, which
// runs only at load.
func withoutInitOp(sigs map[string]Signature) map[string]Signature {
	delete(sigs, initOpSignature)
	return sigs
}

// signaturesFromMetaGraph reads every signature_def entry, the
// __saved_model_init_op pseudo-signature included.
func signaturesFromMetaGraph(mg *corepb.MetaGraphDef) map[string]Signature {
	sigs := make(map[string]Signature, len(mg.GetSignatureDef()))
	for key, def := range mg.GetSignatureDef() {
		s := Signature{
			Key:        key,
			MethodName: def.GetMethodName(),
			Inputs:     make(map[string]TensorSpec, len(def.GetInputs())),
			Outputs:    make(map[string]TensorSpec, len(def.GetOutputs())),
		}
		for k, v := range def.GetInputs() {
			s.Inputs[k] = specFromProto(v)
		}
		for k, v := range def.GetOutputs() {
			s.Outputs[k] = specFromProto(v)
		}
		sigs[key] = s
	}
	return sigs
}
