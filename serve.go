package kerasgo

import (
	"context"
	"encoding/json"
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
	defs, err := json.Marshal(sigs)
	if err != nil {
		return nil, fmt.Errorf("describing signatures: %w", err)
	}
	spec := serving.Spec{Signature: tfmodel.DefaultPredictSignature, InputDim: m.tf.InputDim(), SignatureDefs: defs}
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
	if spec.InputKey == "" || m.tf.InputDim() == 0 {
		return nil, fmt.Errorf("%s: serving needs a prediction signature with one float32 input and output", m.Dir())
	}
	if v := m.vec; v != nil {
		// Shared: vectorizers are safe for concurrent use.
		spec.Vectorize = func(text string) []float32 {
			idx, val := v.VectorizeSparse(text, nil, nil)
			row := make([]float32, v.Width())
			for k, i := range idx {
				row[i] = val[k]
			}
			return row
		}
	}
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
		errors.Is(err, tfmodel.ErrEmptyBatch), errors.Is(err, tfmodel.ErrUnsupportedDType), errors.Is(err, ErrNoTextInput):
		return fmt.Errorf("%w: %w", serving.ErrInvalidInput, err)
	}
	return err
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
