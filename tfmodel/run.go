package tfmodel

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	attrpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/attr_value_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"github.com/kerasgo/kerasgo/tensor"
)

// Run calls any signature by key with named inputs, for models with several
// inputs or outputs, or inputs that are not float32 (strings, ids).
//
// Input values are what the TensorFlow Go bindings turn into tensors: Go
// scalars, slices and nested slices of float32, float64, int32, int64, bool
// and string (e.g. [][]float32 for a batch of feature rows, []string for a
// batch of texts). Every input of the signature must be given. The result has
// every output of the signature, as Go values of the same kinds.
//
// Signatures that the exporter's metadata marks as changing the model
// (training, learning rate) take the model exclusively, like TrainStep.
func (m *Model) Run(ctx context.Context, key string, inputs map[string]any) (map[string]any, error) {
	sig, ok := m.sigs[key]
	if !ok {
		return nil, fmt.Errorf("run: signature %q: %w", key, ErrUnknownSignature)
	}
	given := slices.Collect(maps.Keys(inputs))
	res, names, err := m.runFed(ctx, key, sig, given, func(name string) (*tf.Tensor, error) {
		t, err := tf.NewTensor(inputs[name])
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrUnsupportedDType)
		}
		if err := checkSpec(sig.Inputs[name], t); err != nil {
			return nil, err
		}
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(names))
	for i, name := range names {
		out[name] = res[i].Value()
	}
	runtime.KeepAlive(res) // see readMatrix
	return out, nil
}

// runFed runs signature key of sig with the inputs named in given, each made
// into a tensor by feed, and returns every output in OutputNames order. It
// checks that given names exactly the signature's inputs, and takes the model
// exclusively for signatures that change it. The caller keeps the outputs
// alive while it reads them (see readMatrix).
func (m *Model) runFed(ctx context.Context, key string, sig tensor.Signature, given []string, feed func(name string) (*tf.Tensor, error)) ([]*tf.Tensor, []string, error) {
	feeds := make(map[string]*tf.Tensor, len(given))
	for _, name := range sig.InputNames() {
		if !slices.Contains(given, name) {
			return nil, nil, fmt.Errorf("run %q: input %q (%s) not given: %w", key, name, sig.Inputs[name], ErrShape)
		}
		t, err := feed(name)
		if err != nil {
			return nil, nil, fmt.Errorf("run %q: input %q: %w", key, name, err)
		}
		feeds[name] = t
	}
	for _, name := range given {
		if _, ok := sig.Inputs[name]; !ok {
			return nil, nil, fmt.Errorf("run %q: signature has no input %q (have %v): %w", key, name, sig.InputNames(), ErrShape)
		}
	}
	release, err := m.acquire(ctx, m.changesModel(key))
	if err != nil {
		return nil, nil, fmt.Errorf("run %q: %w", key, err)
	}
	defer release()
	names := sig.OutputNames()
	res, err := m.runLocked(sig, feeds, names)
	if err != nil {
		return nil, nil, fmt.Errorf("run %q: %w", key, err)
	}
	return res, names, nil
}

// ChangesModel reports whether running the signature changes the model:
// the exporter's training steps and set_learning_rate.
func (m *Model) ChangesModel(key string) bool { return m.changesModel(key) }

func (m *Model) changesModel(key string) bool {
	if m.meta == nil {
		return false
	}
	return key == m.meta.Signatures[RoleTrain] || key == m.meta.Signatures[RoleTrainSparse] ||
		key == m.meta.Signatures[RoleSetLearningRate]
}

// checkSpec compares a tensor with the signature's declared dtype and shape.
func checkSpec(spec tensor.Spec, t *tf.Tensor) error {
	if got := dtypeFromTF(t.DataType()); got != spec.DType {
		return fmt.Errorf("dtype %s, want %s: %w", got, spec.DType, ErrUnsupportedDType)
	}
	if spec.Shape == nil {
		return nil
	}
	shape := t.Shape()
	if len(shape) != len(spec.Shape) {
		return fmt.Errorf("shape %v, want %s: %w", shape, spec, ErrShape)
	}
	for i, d := range spec.Shape {
		if d >= 0 && shape[i] != d {
			return fmt.Errorf("shape %v, want %s: %w", shape, spec, ErrShape)
		}
	}
	return nil
}

// dtypeFromTF maps the bindings' dtype; it shares the DataType enum's values.
func dtypeFromTF(t tf.DataType) tensor.DType { return dtypeFromProto(typespb.DataType(t)) }

// ParameterCount returns the number of values held in the model's variables:
// from the exporter's metadata (model weights only) when present, else the
// sum over every variable in the graph (which includes optimizer slots, if
// the SavedModel saved any).
func (m *Model) ParameterCount() int64 {
	if m.meta != nil && m.meta.Parameters > 0 {
		return m.meta.Parameters
	}
	var total int64
	for _, n := range m.metaGraph.GetGraphDef().GetNode() {
		if n.GetOp() != "VarHandleOp" {
			continue
		}
		total += shapeElements(n.GetAttr()["shape"])
	}
	return total
}

func shapeElements(a *attrpb.AttrValue) int64 {
	shape := a.GetShape()
	if shape == nil || shape.GetUnknownRank() {
		return 0
	}
	n := int64(1)
	for _, d := range shape.GetDim() {
		if d.GetSize() < 0 {
			return 0
		}
		n *= d.GetSize()
	}
	return n
}
