package tfmodel

import (
	"errors"
	"fmt"

	"github.com/kerasgo/kerasgo/errkind"
)

// Errors returned by this package; match them with errors.Is. Each has its
// errkind.Kind: the input errors are errkind.InvalidInput (the caller's),
// ErrNotTrainable errkind.FailedPrecondition, the others errkind.Internal.
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
	ErrUnknownSignature = errkind.Sentinel(errkind.InvalidInput, "unknown signature")
	// ErrUnsupportedDType means a tensor's dtype is one kerasgo cannot feed or read.
	ErrUnsupportedDType = errkind.Sentinel(errkind.InvalidInput, "unsupported dtype")
	// ErrShape means an input does not match the shape the signature declares.
	ErrShape = errkind.Sentinel(errkind.InvalidInput, "shape mismatch")
	// ErrEmptyBatch means an input has zero rows.
	ErrEmptyBatch = errkind.Sentinel(errkind.InvalidInput, "empty batch")
	// ErrNonFinite means an input holds NaN or ±Inf and Options.AllowNonFinite is false.
	ErrNonFinite = errkind.Sentinel(errkind.InvalidInput, "non-finite input value")
	// ErrNotTrainable means the model has no training signature.
	ErrNotTrainable = errkind.Sentinel(errkind.FailedPrecondition, "model cannot be trained from Go")
	// ErrLabels means labels do not match the model's label mode or the batch.
	ErrLabels = errkind.Sentinel(errkind.InvalidInput, "labels do not fit the model")
	// ErrInvalidArgument means TensorFlow refused a run's inputs with
	// INVALID_ARGUMENT (a dtype or shape the graph's ops cannot take): the
	// caller's input, not a failure of the model.
	ErrInvalidArgument = errkind.Sentinel(errkind.InvalidInput, "TensorFlow refused the inputs")
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
