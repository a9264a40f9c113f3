package tfmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"github.com/kerasgo/kerasgo/tensor"
	"google.golang.org/protobuf/proto"
)

// initOpSignature is the pseudo-signature TF2 SavedModels use for their init op.
const initOpSignature = "__saved_model_init_op"

func dtypeFromProto(t typespb.DataType) tensor.DType { return tensor.FromTFName(t.String()) }

func specFromProto(pb *corepb.TensorInfo) tensor.Spec {
	spec := tensor.Spec{Name: pb.GetName(), DType: dtypeFromProto(pb.GetDtype()), NoShape: pb.GetTensorShape() == nil}
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
func withoutInitOp(sigs map[string]tensor.Signature) map[string]tensor.Signature {
	delete(sigs, initOpSignature)
	return sigs
}

// signaturesFromMetaGraph reads every signature_def entry, the
// __saved_model_init_op pseudo-signature included.
func signaturesFromMetaGraph(mg *corepb.MetaGraphDef) map[string]tensor.Signature {
	sigs := make(map[string]tensor.Signature, len(mg.GetSignatureDef()))
	for key, def := range mg.GetSignatureDef() {
		s := tensor.Signature{
			Key:        key,
			MethodName: def.GetMethodName(),
			Inputs:     make(map[string]tensor.Spec, len(def.GetInputs())),
			Outputs:    make(map[string]tensor.Spec, len(def.GetOutputs())),
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
