// Package serving is kerasgo's model server: an http.Handler that speaks
// TensorFlow Serving's REST API (status, metadata, predict, classify,
// regress) over any number of models and versions, with dynamic batching,
// hot reload of new versions from a base path, a memory bound on the
// requests in flight, and Prometheus metrics. Its Go API (Acquire,
// ModelVersion, Reserve, Reload) is what serving/grpcapi builds TF
// Serving's gRPC API on, sharing all of it.
//
// It has no cgo: models come through the Model interface and a Loader
// (package servingmodel's Load adapts a kerasgo.Model), so the server is
// tested with fakes and can be mounted by a Go service in its own mux;
// package serving/serve runs it as `kerasgo serve` does.
package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/tensor"
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
	// Signatures describe every signature of the model, for the metadata
	// endpoint and for TensorModels, which run any of them.
	Signatures map[string]tensor.Signature
	// Input says how the prediction signature takes instances.
	Input Input
}

// Input is how a model's prediction signature takes the instances of a
// request.
type Input int

// The inputs.
const (
	// InputTensors: a TensorModel gets every request as tensors shaped by
	// the JSON, as TF Serving feeds them.
	InputTensors Input = iota
	// InputRows: float32 rows of InputDim features (kerasgo exporter
	// models): requests are read as such rows and merged by the batcher.
	InputRows
	// InputRowsOrText: rows as InputRows, or raw texts the model turns into
	// its features itself (a TextModel whose PredictText vectorizes):
	// string instances go to PredictText, number rows to Predict.
	InputRowsOrText
	// InputText: raw texts; the model takes strings (a TextModel).
	InputText
	// InputMatrix: a TensorModel whose prediction signature declares one
	// float32 matrix [n, InputDim] in and one float32 matrix or vector out
	// (a plain Keras model.export() of a Dense network). A request that
	// holds exactly such rows is read as rows and merged by the batcher; any
	// other, and one whose rows the model refuses as the client's fault (a
	// non-finite value), is read as TF Serving's tensors, shaped by the
	// request, as under InputTensors, with TF Serving's answers and errors.
	InputMatrix
)

// rows reports whether instances may be rows of numbers read as rows.
func (i Input) rows() bool { return i == InputRows || i == InputRowsOrText || i == InputMatrix }

// texts reports whether instances may be raw texts.
func (i Input) texts() bool { return i == InputText || i == InputRowsOrText }

// TextModel is a Model that takes raw texts: its graph takes strings (its
// text preprocessing inside, e.g. a Keras TextVectorization layer;
// InputText), or it vectorizes them itself (InputRowsOrText). String
// instances go to PredictText; such requests are not merged by the batcher.
type TextModel interface {
	Model
	PredictText(ctx context.Context, texts []string) (dense.Matrix, error)
}

// Loader loads the model in dir.
type Loader func(ctx context.Context, dir string) (Model, error)

// FileConfig is the JSON form of a model configuration file, the
// counterpart of TF Serving's model_config_list, with its logging_config
// flattened:
//
//	{"models": [{"name": "fortunes", "base_path": "/models/fortunes",
//	             "versions": [1, 2], "labels": {"stable": 1, "canary": 2},
//	             "logging": {"filename_prefix": "/var/log/kerasgo/fortunes",
//	                         "sampling_rate": 0.1}}]}
type FileConfig struct {
	Models []struct {
		Name     string           `json:"name"`
		BasePath string           `json:"base_path"`
		Versions []int64          `json:"versions"`
		Labels   map[string]int64 `json:"labels"`
		Logging  *struct {
			FilenamePrefix string   `json:"filename_prefix"`
			SamplingRate   *float64 `json:"sampling_rate"`
		} `json:"logging"`
	} `json:"models"`
}

// ParseFileConfig reads a model configuration file's JSON.
func ParseFileConfig(data []byte) ([]ModelConfig, error) {
	var fc FileConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	out := make([]ModelConfig, 0, len(fc.Models))
	for i, m := range fc.Models {
		if m.Name == "" || m.BasePath == "" {
			return nil, fmt.Errorf("model config: model %d needs a name and a base_path", i)
		}
		for label, v := range m.Labels {
			if len(m.Versions) > 0 && !slices.Contains(m.Versions, v) {
				return nil, fmt.Errorf("model config: %s label %q points at version %d, which is not among the served versions %v", m.Name, label, v, m.Versions)
			}
		}
		mc := ModelConfig{Name: m.Name, BasePath: m.BasePath, Versions: m.Versions, Labels: m.Labels}
		if l := m.Logging; l != nil {
			if l.FilenamePrefix == "" || l.SamplingRate == nil || *l.SamplingRate < 0 || *l.SamplingRate > 1 {
				return nil, fmt.Errorf("model config: %s logging: want a filename_prefix and a sampling_rate of 0 to 1", m.Name)
			}
			mc.Logging = LoggingConfig{FilenamePrefix: l.FilenamePrefix, SamplingRate: *l.SamplingRate}
		}
		out = append(out, mc)
	}
	return out, nil
}

// outputWidth returns the prediction signature's output width (1 for a
// vector output: one value a row), or 0 when the signature does not say.
func (s Spec) outputWidth() int {
	out, ok := s.Signatures[s.Signature].Outputs[s.OutputKey]
	if !ok || len(out.Shape) == 0 {
		return 0
	}
	if len(out.Shape) == 1 {
		return 1
	}
	if d := out.Shape[len(out.Shape)-1]; d > 0 {
		return int(d)
	}
	return 0
}
