// Package serving is kerasgo's model server: an http.Handler that speaks
// TensorFlow Serving's REST API (status, metadata, predict) over any number
// of models and versions, with dynamic batching, hot reload of new versions
// from a base path, and Prometheus metrics.
//
// It has no cgo: models come through the Model interface and a Loader
// (the CLI plugs in tfmodel), so the server is tested with fakes and can be
// mounted by a Go service in its own mux.
package serving

import (
	"context"
	"encoding/json"

	"github.com/kerasgo/kerasgo/dense"
)

// Model is one loaded version of a model.
type Model interface {
	// Predict maps feature rows to output rows. It must be safe for
	// concurrent use.
	Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error)
	// Spec describes the prediction signature.
	Spec() Spec
	// Close frees the model once no request uses it.
	Close() error
}

// Spec describes a model's prediction signature for the REST API.
type Spec struct {
	// Signature is the key clients may name in signature_name
	// ("serving_default" for Keras and kerasgo exports).
	Signature string
	// InputKey and OutputKey name the one float input and output.
	InputKey, OutputKey string
	// InputDim is the number of features per instance (-1: any). With
	// InputDim 1 an instance may also be a bare number.
	InputDim int
	// ScalarOutput says the output tensor has rank 1: each prediction is a
	// number, not a list (TF Serving's half_plus_two example).
	ScalarOutput bool
	// SignatureDefs is the metadata endpoint's signature_def map, as JSON.
	SignatureDefs json.RawMessage
}

// Loader loads the model in dir.
type Loader func(ctx context.Context, dir string) (Model, error)
