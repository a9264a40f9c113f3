package tfmodel

import (
	"errors"
	"fmt"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrClosed is returned by every call on a model after Close.
	ErrClosed = errors.New("model is closed")
	// ErrNotSavedModel means the directory holds no saved_model.pb.
	ErrNotSavedModel = errors.New("not a SavedModel directory")
	// ErrUnknownTag means no MetaGraph in the SavedModel has the requested tags.
	ErrUnknownTag = errors.New("no MetaGraph with these tags")
	// ErrCorrupt means TensorFlow could not restore the SavedModel (graph or variables).
	ErrCorrupt = errors.New("SavedModel could not be restored")
	// ErrUnknownSignature means the model has no signature with the requested key.
	ErrUnknownSignature = errors.New("unknown signature")
	// ErrUnsupportedDType means a tensor's dtype is one kerasgo cannot feed or read.
	ErrUnsupportedDType = errors.New("unsupported dtype")
	// ErrShape means an input does not match the shape the signature declares.
	ErrShape = errors.New("shape mismatch")
	// ErrEmptyBatch means an input has zero rows.
	ErrEmptyBatch = errors.New("empty batch")
	// ErrNonFinite means an input holds NaN or ±Inf and Options.AllowNonFinite is false.
	ErrNonFinite = errors.New("non-finite input value")
	// ErrNotTrainable means the model has no training signature.
	ErrNotTrainable = errors.New("model cannot be trained from Go")
	// ErrLabels means labels do not match the model's label mode or the batch.
	ErrLabels = errors.New("labels do not fit the model")
	// ErrInvalidArgument means TensorFlow refused a run's inputs with
	// INVALID_ARGUMENT (a dtype or shape the graph's ops cannot take): the
	// caller's input, not a failure of the model.
	ErrInvalidArgument = errors.New("TensorFlow refused the inputs")
)

// InputError locates a bad value in an input batch.
type InputError struct {
	Row, Col int // zero-based position in the batch; Col is -1 when the whole row is at fault
	Err      error
}

func (e *InputError) Error() string {
	if e.Col < 0 {
		return fmt.Sprintf("row %d: %v", e.Row, e.Err)
	}
	return fmt.Sprintf("row %d, column %d: %v", e.Row, e.Col, e.Err)
}

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }
