package kerasgo

import (
	"context"
	"errors"
	"fmt"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// ServingModel returns the model as a serving.Model for the TF
// Serving-compatible handler: its prediction signature, input and output
// keys, metadata, and raw-text instances through the model's vectorizer or
// its string-taking graph. Closing the serving.Model closes m.
func (m *Model) ServingModel() (serving.Model, error) {
	sigs := m.tf.Signatures()
	spec := serving.Spec{Signature: tfmodel.DefaultPredictSignature, InputDim: m.tf.InputDim(), Signatures: servingSignatures(m.tf.SignatureDefs())}
	if md := m.tf.Metadata(); md != nil {
		spec.Signature, spec.InputKey, spec.OutputKey = md.Signatures[tfmodel.RolePredict], md.InputKey, md.OutputKey
	} else if sig, ok := sigs[tfmodel.DefaultPredictSignature]; ok && len(sig.Inputs) == 1 && len(sig.Outputs) == 1 {
		spec.InputKey, spec.OutputKey = sig.InputNames()[0], sig.OutputNames()[0]
	}
	if sig, ok := sigs[spec.Signature]; ok {
		if out, ok := sig.Outputs[spec.OutputKey]; ok && len(out.Shape) == 1 {
			spec.ScalarOutput = true
		}
	}
	spec.TextInput = m.input == InputStrings
	// The exporter's models take float32 rows of a known width: those
	// requests are merged by the batcher. Any other model gets TF Serving's
	// tensors, shaped by the JSON.
	spec.Rows = m.tf.Metadata() != nil && spec.InputKey != "" && m.tf.InputDim() > 0 && !spec.TextInput
	spec.Vectorizes = m.vec != nil
	return servedModel{m: m, spec: spec}, nil
}

// servedModel adapts *Model to serving.Model (and serving.TextModel).
type servedModel struct {
	m    *Model
	spec serving.Spec
}

func (s servedModel) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	y, err := s.m.Predict(ctx, x)
	return y, servingError(err)
}

func (s servedModel) PredictText(ctx context.Context, texts []string) (dense.Matrix, error) {
	y, err := s.m.PredictText(ctx, texts)
	return y, servingError(err)
}

// servingError marks the errors that reject a request's input as the
// client's (serving.ErrInvalidInput, answered 400); the others (TensorFlow
// failing at run time, a closed model) stay the server's.
func servingError(err error) error {
	var ie *tfmodel.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie), errors.Is(err, tfmodel.ErrShape), errors.Is(err, tfmodel.ErrNonFinite),
		errors.Is(err, tfmodel.ErrEmptyBatch), errors.Is(err, tfmodel.ErrUnsupportedDType), errors.Is(err, ErrNoTextInput),
		errors.Is(err, tfmodel.ErrUnknownSignature), errors.Is(err, tfmodel.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", serving.ErrInvalidInput, err)
	}
	return err
}

// Run runs any signature on tensors shaped by the request (serving.TensorModel),
// except those that change the model: a client must not move the weights of
// a served version (train with kerasgo train, and let serve load the result
// as a new version).
func (s servedModel) Run(ctx context.Context, signature string, inputs map[string]serving.Tensor) (map[string]serving.Tensor, error) {
	if s.m.tf.ChangesModel(signature) {
		return nil, fmt.Errorf("%w: signature %q changes the model's weights or optimizer; kerasgo serve does not run it (train with kerasgo train and serve the result as a new version)", serving.ErrInvalidInput, signature)
	}
	in := make(map[string]tfmodel.Tensor, len(inputs))
	for k, t := range inputs {
		in[k] = tfmodel.Tensor{DType: tfmodel.DType(t.DType), Shape: t.Shape, Data: t.Data}
	}
	out, err := s.m.tf.RunTensors(ctx, signature, in)
	if err != nil {
		return nil, servingError(err)
	}
	res := make(map[string]serving.Tensor, len(out))
	for k, t := range out {
		res[k] = serving.Tensor{DType: string(t.DType), Shape: t.Shape, Data: t.Data}
	}
	return res, nil
}

// SignatureDefMap returns the model's signatures in TF Serving's JSON form,
// as its metadata endpoint and `kerasgo inspect --json` write them.
func (m *Model) SignatureDefMap() map[string]any {
	return serving.SignatureDefMap(servingSignatures(m.tf.SignatureDefs()))
}

// servingSignatures describes the model's signatures for the serving layer.
func servingSignatures(sigs map[string]tfmodel.Signature) map[string]serving.SignatureSpec {
	out := make(map[string]serving.SignatureSpec, len(sigs))
	conv := func(specs map[string]tfmodel.TensorSpec) map[string]serving.TensorSpec {
		m := make(map[string]serving.TensorSpec, len(specs))
		for k, t := range specs {
			m[k] = serving.TensorSpec{Name: t.Tensor, DType: string(t.DType), Shape: t.Shape, NoShape: t.NoShape}
		}
		return m
	}
	for key, sig := range sigs {
		out[key] = serving.SignatureSpec{MethodName: sig.MethodName, Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs)}
	}
	return out
}

func (s servedModel) Spec() serving.Spec { return s.spec }
func (s servedModel) Close() error       { return s.m.Close() }

// LoadServing opens the SavedModel in dir for serving: the serving.Loader
// that `kerasgo serve` gives the handler.
func LoadServing(ctx context.Context, dir string) (serving.Model, error) {
	m, err := Open(ctx, dir, DefaultOptions())
	if err != nil {
		return nil, err
	}
	sm, err := m.ServingModel()
	if err != nil {
		m.Close()
		return nil, err
	}
	return sm, nil
}
