package tfmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MetadataFile is the exporter's metadata file, inside the SavedModel's assets/.
const MetadataFile = "kerasgo.json"

// Label modes a model can be trained with.
const (
	LabelOneHot     = "onehot"     // one class per row, labels as one-hot rows
	LabelSparse     = "sparse"     // one class per row, labels as class indices
	LabelMultiLabel = "multilabel" // any number of classes per row, labels as multi-hot rows
)

// Metadata is what kerasgo's exporter records about a model, so that the Go
// side never has to guess it. Models not made by the exporter have none.
type Metadata struct {
	Format           string            `json:"format"`
	Source           string            `json:"source"`
	Seed             *int              `json:"seed"`
	InputKey         string            `json:"input_key"`
	InputDim         int               `json:"input_dim"`
	InputDType       string            `json:"input_dtype"`
	OutputKey        string            `json:"output_key"`
	OutputActivation string            `json:"output_activation"`
	Classes          []string          `json:"classes"`
	LabelMode        string            `json:"label_mode"`
	LabelsKey        string            `json:"labels_key"`
	LabelsDType      string            `json:"labels_dtype"`
	SampleWeightKey  string            `json:"sample_weight_key"`
	Loss             KerasObject       `json:"loss"`
	Optimizer        KerasObject       `json:"optimizer"`
	Signatures       map[string]string `json:"signatures"`
	Parameters       int64             `json:"parameters"`
	KerasVersion     string            `json:"keras_version"`
	TensorFlowVer    string            `json:"tensorflow_version"`
	// Vectorizer names the fitted text vectorizer in assets/ (for raw text
	// input), or is empty.
	Vectorizer string `json:"vectorizer"`
	// Tokenizer names a legacy Keras Tokenizer's to_json() in assets/, and
	// TokenizerMode its texts_to_matrix mode (binary, count, freq, tfidf).
	Tokenizer     string `json:"tokenizer"`
	TokenizerMode string `json:"tokenizer_mode"`
}

// KerasObject is a serialised Keras object: its class and its get_config().
type KerasObject struct {
	ClassName string         `json:"class_name"`
	Config    map[string]any `json:"config"`
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
	return &m, nil
}
