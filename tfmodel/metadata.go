package tfmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// MetadataFile is the exporter's metadata file, inside the SavedModel's assets/.
const MetadataFile = "kerasgo.json"

// Label modes a model can be trained with.
const (
	LabelOneHot     = "onehot"     // one class per row, labels as one-hot rows
	LabelSparse     = "sparse"     // one class per row, labels as class indices
	LabelMultiLabel = "multilabel" // any number of classes per row, labels as multi-hot rows
)

// Role is what a signature is for: a key of Metadata.Signatures.
type Role string

// The roles the exporter (scripts/export_keras.py) names signatures for, and
// the signature keys it gives them.
const (
	// RolePredict: features -> probabilities ("serving_default").
	RolePredict Role = "predict"
	// RolePredictSparse: RolePredict with the features as a sparse batch
	// (indices int64[nnz, 2], values float32[nnz], dense_shape int64[2])
	// ("predict_sparse").
	RolePredictSparse Role = "predict_sparse"
	// RoleTrain: features, labels, sample_weight -> loss, probabilities; one
	// optimizer step ("train_step").
	RoleTrain Role = "train"
	// RoleTrainSparse: RoleTrain with sparse features ("train_step_sparse").
	RoleTrainSparse Role = "train_sparse"
	// RoleEvaluate: features, labels, sample_weight -> loss, probabilities;
	// changes nothing ("evaluate_step").
	RoleEvaluate Role = "evaluate"
	// RoleEvaluateSparse: RoleEvaluate with sparse features
	// ("evaluate_step_sparse").
	RoleEvaluateSparse Role = "evaluate_sparse"
	// RoleSetLearningRate: learning_rate -> learning_rate; assigns the
	// optimizer's rate ("set_learning_rate").
	RoleSetLearningRate Role = "set_learning_rate"
	// RoleWeights: () -> every model variable, keyed by its Keras path with
	// "/" as "__" ("get_weights").
	RoleWeights Role = "weights"
)

// Metadata is what kerasgo's exporter (scripts/export_keras.py) records about
// a model in assets/kerasgo.json, so that the Go side never has to guess it.
// Models not made by the exporter have none. The JSON keys are the contract
// with the exporter: a field added there must be added here.
type Metadata struct {
	// Format is the metadata format's version, "kerasgo.export/v1".
	Format string `json:"format"`
	// Source says what was exported, for people: from the command line,
	// "arch:question" (the built-in architecture) or "file:NAME" (a .keras
	// or .h5 file, by base name); from Python, whatever the caller of
	// export() passed ("testdata:NAME" for the test models), else empty.
	Source string `json:"source"`
	// Seed is the random seed the exporter set before building or loading
	// the model (--seed, 0 by default; an --arch model's initial weights
	// are deterministic given it); nil when export() was called without one.
	Seed *int `json:"seed"`
	// InputKey is the features' input name in the dense predict, train and
	// evaluate signatures, "features" (the sparse ones take "indices",
	// "values" and "dense_shape" instead).
	InputKey string `json:"input_key"`
	// InputDim is the number of features per row: the model input's last
	// dimension.
	InputDim int `json:"input_dim"`
	// InputDType is the features' element type, "float32".
	InputDType string `json:"input_dtype"`
	// OutputKey is the probabilities' output name in the predict, train and
	// evaluate signatures (dense and sparse), "probabilities".
	OutputKey string `json:"output_key"`
	// OutputActivation is the last layer's activation function by name
	// ("sigmoid", "softmax", ...), or "unknown" when it has none.
	OutputActivation string `json:"output_activation"`
	// Classes names the outputs, in output order: the --class-names given
	// to the exporter, else "class_0", "class_1", ....
	Classes []string `json:"classes"`
	// LabelMode is how labels are fed to the train and evaluate
	// signatures: LabelSparse for a sparse categorical cross-entropy loss,
	// LabelMultiLabel for a model exported with --multi-label, else
	// LabelOneHot.
	LabelMode string `json:"label_mode"`
	// LabelsKey is the labels' input name in the train and evaluate
	// signatures (dense and sparse), "labels".
	LabelsKey string `json:"labels_key"`
	// LabelsDType is the labels' element type: "int64" (one class index per
	// row) with LabelSparse, else "float32" (one row of Classes values).
	LabelsDType string `json:"labels_dtype"`
	// SampleWeightKey is the per-row weights' input name in the train and
	// evaluate signatures (dense and sparse), "sample_weight".
	SampleWeightKey string `json:"sample_weight_key"`
	// Loss is the loss the train and evaluate signatures compute: its Keras
	// class ("BinaryCrossentropy", ...) and get_config(); a custom loss
	// function is recorded as the exporter's wrapper, "_FunctionLoss".
	Loss KerasObject `json:"loss"`
	// Optimizer is the optimizer the train signatures step, with its
	// configuration at export time.
	Optimizer KerasObject `json:"optimizer"`
	// OptimizerState says what the optimizer's moments and iteration count
	// were at export; OptimizerStateNote says why a saved state could not be
	// carried ([OptimizerStateFresh]), else is usually empty.
	OptimizerState     OptimizerState `json:"optimizer_state"`
	OptimizerStateNote string         `json:"optimizer_state_note"`
	// OptimizerStateMode is the choice made for a saved optimizer state:
	// [KeepOptimizerState] or [ResetOptimizerState] (kerasgo export
	// --optimizer-state; by default what the Keras that wrote the file does
	// on load_model + fit). OptimizerStateWhy gives the reason in a
	// sentence. Both are empty in exports older than the choice.
	OptimizerStateMode OptimizerStateMode `json:"optimizer_state_mode"`
	OptimizerStateWhy  string             `json:"optimizer_state_why"`
	// LearningRateSchedule is the Keras learning-rate schedule the train
	// signatures evaluate at the optimizer's iteration count, or nil for a
	// constant rate.
	LearningRateSchedule *LearningRateSchedule `json:"learning_rate_schedule"`
	// Signatures names the SavedModel signature that plays each role; the
	// exporter names one for every Role constant.
	Signatures map[Role]string `json:"signatures"`
	// SparseProduct is how the sparse signatures compute the first layer:
	// SparseProductCSR or SparseProductDensify, empty without sparse
	// signatures and in exports older than the choice (which densify).
	SparseProduct SparseProduct `json:"sparse_product"`
	// Parameters is the number of values in the model's variables
	// (Keras' count_params(): weights only, no optimizer state).
	Parameters int64 `json:"parameters"`
	// KerasVersion and TensorFlowVer are the versions that exported the
	// model.
	KerasVersion  string `json:"keras_version"`
	TensorFlowVer string `json:"tensorflow_version"`
	// Vectorizer names the fitted text vectorizer in assets/ (for raw text
	// input), "vectorizer.json", or is empty.
	Vectorizer string `json:"vectorizer"`
	// Tokenizer names a legacy Keras Tokenizer's to_json() in assets/,
	// "tokenizer.json", or is empty; TokenizerMode is then its
	// texts_to_matrix mode (binary, count, freq, tfidf), else empty. A model
	// has a Vectorizer or a Tokenizer, never both.
	Tokenizer     string `json:"tokenizer"`
	TokenizerMode string `json:"tokenizer_mode"`
}

// SparseProduct is how an export's sparse signatures (predict_sparse and
// the sparse steps) compute the model's first layer.
type SparseProduct string

const (
	// SparseProductDensify: Keras' own Dense layer on the batch made dense
	// (SparseToDense, then MatMul); the cost of a dense batch.
	SparseProductDensify SparseProduct = "densify"
	// SparseProductCSR: a CSR × dense product over the non-zeros
	// (SparseMatrixMatMul), when a single Dense layer reads the input.
	SparseProductCSR SparseProduct = "csr"
)

// OptimizerState is what became of a model's optimizer state at export.
type OptimizerState string

// The optimizer states the exporter records.
const (
	// OptimizerStateRestored: the saved moments and iteration count were
	// carried; training goes on from them.
	OptimizerStateRestored OptimizerState = "restored"
	// OptimizerStateReset: a saved state was set aside on purpose (the
	// source's Keras does so, or --optimizer-state reset asked); training
	// starts from zero moments at iteration 0.
	OptimizerStateReset OptimizerState = "reset"
	// OptimizerStateFresh: a saved state could not be carried
	// (Metadata.OptimizerStateNote says why); training starts afresh.
	OptimizerStateFresh OptimizerState = "fresh"
	// OptimizerStateNew: there was no saved state (a new optimizer, or one
	// that had taken no step).
	OptimizerStateNew OptimizerState = "new"
)

// OptimizerStateMode is the choice kerasgo export makes for a saved
// optimizer state.
type OptimizerStateMode string

// The choices of kerasgo export --optimizer-state.
const (
	// KeepOptimizerState carries the saved moments and iteration count.
	KeepOptimizerState OptimizerStateMode = "keep"
	// ResetOptimizerState starts the optimizer afresh.
	ResetOptimizerState OptimizerStateMode = "reset"
)

// ParseOptimizerStateMode returns the mode its name (keep or reset) names.
func ParseOptimizerStateMode(name string) (OptimizerStateMode, error) {
	switch m := OptimizerStateMode(name); m {
	case KeepOptimizerState, ResetOptimizerState:
		return m, nil
	}
	return "", fmt.Errorf("optimizer state %q: %w", name, ErrOptimizerStateMode)
}

// String returns the mode's name ("" for none chosen).
func (m OptimizerStateMode) String() string { return string(m) }

// Set parses keep or reset, so a command binds the mode to a flag
// (pflag.Value).
func (m *OptimizerStateMode) Set(s string) error {
	v, err := ParseOptimizerStateMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the flag's values in usage texts (pflag.Value).
func (m *OptimizerStateMode) Type() string { return "keep|reset" }

// ErrOptimizerStateMode is returned for a name that is neither keep nor reset.
var ErrOptimizerStateMode = errors.New("want keep or reset")

// LearningRateSchedule is a Keras learning-rate schedule carried into the
// exported train steps.
type LearningRateSchedule struct {
	// ClassName is Keras' class (ExponentialDecay, CosineDecay, ...) and
	// Config its get_config().
	ClassName string         `json:"class_name"`
	Config    map[string]any `json:"config"`
	// ReplacedBy is the constant rate export --learning-rate put in the
	// schedule's place, or nil when the schedule drives the rate.
	// (set_learning_rate does the same at run time.)
	ReplacedBy *float64 `json:"replaced_by"`
}

func (s *LearningRateSchedule) clone() *LearningRateSchedule {
	if s == nil {
		return nil
	}
	c := *s
	if s.Config != nil {
		c.Config = cloneJSON(s.Config).(map[string]any)
	}
	if s.ReplacedBy != nil {
		r := *s.ReplacedBy
		c.ReplacedBy = &r
	}
	return &c
}

// clone returns a deep copy of md (nil for nil).
func (md *Metadata) clone() *Metadata {
	if md == nil {
		return nil
	}
	c := *md
	if md.Seed != nil {
		seed := *md.Seed
		c.Seed = &seed
	}
	c.Classes = slices.Clone(md.Classes)
	c.Signatures = maps.Clone(md.Signatures)
	c.Loss = md.Loss.clone()
	c.Optimizer = md.Optimizer.clone()
	c.LearningRateSchedule = md.LearningRateSchedule.clone()
	return &c
}

// KerasObject is a serialised Keras object: its class and its get_config().
type KerasObject struct {
	ClassName string         `json:"class_name"`
	Config    map[string]any `json:"config"`
}

func (o KerasObject) clone() KerasObject {
	if o.Config == nil {
		return o
	}
	return KerasObject{ClassName: o.ClassName, Config: cloneJSON(o.Config).(map[string]any)}
}

// cloneJSON deep-copies a value encoding/json decoded into an any: its
// objects and arrays are copied, other values are immutable.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = cloneJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneJSON(e)
		}
		return c
	}
	return v
}

// readMetadata reads assets/kerasgo.json; a model without it returns nil, nil.
func readMetadata(dir string) (*Metadata, error) {
	path := filepath.Join(dir, "assets", MetadataFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing metadata %s: %w", path, err)
	}
	switch m.LabelMode {
	case LabelOneHot, LabelSparse, LabelMultiLabel:
	default:
		return nil, fmt.Errorf("metadata %s: unknown label_mode %q", path, m.LabelMode)
	}
	switch m.OptimizerState {
	case "", OptimizerStateRestored, OptimizerStateReset, OptimizerStateFresh, OptimizerStateNew:
	default:
		return nil, fmt.Errorf("metadata %s: unknown optimizer_state %q", path, m.OptimizerState)
	}
	if m.OptimizerStateMode != "" {
		if _, err := ParseOptimizerStateMode(string(m.OptimizerStateMode)); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", path, err)
		}
	}
	return &m, nil
}
