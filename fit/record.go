package fit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kerasgo/kerasgo/atomicfile"
	"github.com/kerasgo/kerasgo/evaluation"
)

// RecordFile is where a training run is recorded in the model it saves,
// under assets/ (which travels with a SavedModel), so that an evaluation
// report can draw the learning curves later.
const RecordFile = "kerasgo-training.json"

// Record is a training run's history: the evaluation of the model as loaded
// (nil without validation data) and the epochs.
type Record struct {
	Start  *evaluation.Report `json:"start,omitempty"`
	Epochs []Epoch            `json:"epochs"`
}

// WriteRecord writes res's history into modelDir/assets/RecordFile,
// atomically.
func WriteRecord(modelDir string, res Result) error {
	if err := os.MkdirAll(filepath.Join(modelDir, "assets"), 0o777); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(modelDir, "assets", RecordFile), Record{Start: res.Start, Epochs: res.History})
}

// ReadRecord reads the training record in modelDir; it returns nil and no
// error for a model that has none.
func ReadRecord(modelDir string) (*Record, error) {
	path := filepath.Join(modelDir, "assets", RecordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rec, nil
}
