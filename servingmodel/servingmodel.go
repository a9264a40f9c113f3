// Package servingmodel adapts a kerasgo.Model to package serving's Model, so
// the TF Serving-compatible REST and gRPC handlers serve it: Load is the
// serving.Loader that `kerasgo serve` passes to serving.New.
//
// It is its own package so that importing kerasgo for Open and Predict does
// not link the serving stack (Prometheus, the JSON and protobuf codecs).
package servingmodel

import (
	"context"
	"fmt"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// New returns m as a serving.Model for the TF Serving-compatible handler:
// its prediction signature, input and output keys, metadata, and raw-text
// instances through the model's vectorizer or its string-taking graph.
// Closing the serving.Model closes m.
func New(m *kerasgo.Model) serving.Model {
	tm := m.Runtime()
	sigs := tm.Signatures()
	spec := serving.Spec{Signature: tfmodel.DefaultPredictSignature, InputDim: tm.InputDim(), Signatures: tm.SignatureDefs()}
	if md := tm.Metadata(); md != nil {
		spec.Signature, spec.InputKey, spec.OutputKey = md.Signatures[tfmodel.RolePredict], md.InputKey, md.OutputKey
	} else if sig, ok := sigs[tfmodel.DefaultPredictSignature]; ok && len(sig.Inputs) == 1 && len(sig.Outputs) == 1 {
		spec.InputKey, spec.OutputKey = sig.InputNames()[0], sig.OutputNames()[0]
	}
	if sig, ok := sigs[spec.Signature]; ok {
		if out, ok := sig.Outputs[spec.OutputKey]; ok && len(out.Shape) == 1 {
			spec.ScalarOutput = true
		}
	}
	textInput := m.Input() == kerasgo.InputStrings
	// The exporter's models take float32 rows of a known width: those
	// requests are merged by the batcher. So are the requests that hold
	// exactly the declared rows of a model whose prediction signature maps
	// one float32 matrix to one float32 matrix or vector (a plain Keras
	// model.export() of a Dense network), as TF Serving's batching merges
	// any model's. Any other model, or request, gets TF Serving's tensors,
	// shaped by the JSON, one request a call.
	rows := spec.InputKey != "" && tm.InputDim() > 0 && !textInput
	switch {
	case textInput:
		spec.Input = serving.InputText
	case m.Vectorizer() != nil:
		spec.Input = serving.InputRowsOrText
	case rows && tm.Metadata() != nil:
		spec.Input = serving.InputRows
	case rows && mapsRows(sigs[spec.Signature], spec.InputKey, spec.OutputKey):
		spec.Input = serving.InputMatrix
	}
	return servedModel{m: m, spec: spec}
}

// mapsRows reports whether sig's input in is a float32 matrix [n, D] and its
// output out a float32 matrix [n, C] or vector [n], n left open: the rows
// the batcher merges, and what it splits back.
func mapsRows(sig tensor.Signature, in, out string) bool {
	x, y := sig.Inputs[in], sig.Outputs[out]
	return x.DType == tensor.Float32 && len(x.Shape) == 2 && x.Shape[0] < 0 &&
		y.DType == tensor.Float32 && (len(y.Shape) == 1 || len(y.Shape) == 2) && y.Shape[0] < 0
}

// servedModel adapts *Model to serving.Model (and serving.TextModel).
type servedModel struct {
	m    *kerasgo.Model
	spec serving.Spec
}

func (s servedModel) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	return s.m.Predict(ctx, x)
}

func (s servedModel) PredictText(ctx context.Context, texts []string) (dense.Matrix, error) {
	return s.m.PredictText(ctx, texts)
}

// Run runs any signature on tensors shaped by the request (serving.TensorModel),
// except those that change the model: a client must not move the weights of
// a served version (train with kerasgo train, and let serve load the result
// as a new version).
func (s servedModel) Run(ctx context.Context, signature string, inputs map[string]tensor.Tensor) (map[string]tensor.Tensor, error) {
	if s.m.Runtime().ChangesModel(signature) {
		return nil, fmt.Errorf("%w: signature %q changes the model's weights or optimizer; kerasgo serve does not run it (train with kerasgo train and serve the result as a new version)", serving.ErrInvalidInput, signature)
	}
	out, err := s.m.Runtime().RunTensors(ctx, signature, inputs)
	if err != nil {
		return nil, err // its errkind.Kind says whose fault it is
	}
	return out, nil
}

// SignatureDefMap returns the model's signatures in TF Serving's JSON form,
// as its metadata endpoint and `kerasgo inspect --json` write them.
func SignatureDefMap(m *tfmodel.Model) map[string]any {
	return serving.SignatureDefMap(m.SignatureDefs())
}

func (s servedModel) Spec() serving.Spec { return s.spec }
func (s servedModel) Close() error       { return s.m.Close() }

// Load opens the SavedModel in dir for serving (kerasgo.Open with the
// default options): the serving.Loader that `kerasgo serve` gives
// serving.New.
func Load(ctx context.Context, dir string) (serving.Model, error) {
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		return nil, err
	}
	return New(m), nil
}
