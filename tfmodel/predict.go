package tfmodel

import (
	"context"
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kerasgo/kerasgo/dense"
)

// Predict runs the model's prediction signature on x (one example a row) and
// returns one row of outputs (for kerasgo exports: class probabilities) per
// input row. Inputs larger than Options.BatchSize are split into chunks.
//
// The prediction signature is the one the exporter's metadata names, else
// serving_default; it must have one float32 input and one float32 output.
// Models with several inputs or outputs are called with Run.
func (m *Model) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if m.predict.err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", m.predict.err)
	}
	if err := m.checkFeatures(x); err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	release, err := m.acquire(ctx, false)
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	defer release()
	sig := m.sigs[m.predict.signature]
	in, err := m.output(sig.Inputs[m.predict.input].Tensor)
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	out, err := m.output(sig.Outputs[m.predict.output].Tensor)
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	var result dense.Matrix
	for from := 0; from < x.Rows; from += m.opts.BatchSize {
		if err := ctx.Err(); err != nil {
			return dense.Matrix{}, fmt.Errorf("predict: %w", err)
		}
		to := min(from+m.opts.BatchSize, x.Rows)
		chunk := x.Slice(from, to)
		t, err := newTensor(tf.Float, chunk.Data, int64(chunk.Rows), int64(chunk.Cols))
		if err != nil {
			return dense.Matrix{}, fmt.Errorf("predict: %w", err)
		}
		res, err := m.session.Run(map[tf.Output]*tf.Tensor{in: t}, []tf.Output{out}, nil)
		m.noteTensorBytes(len(chunk.Data) * 4)
		if err != nil {
			return dense.Matrix{}, fmt.Errorf("predict rows %d..%d: %w", from, to-1, err)
		}
		if result.Data == nil {
			// Size the result from the first chunk's output width.
			result, err = readMatrix(res[0], dense.Matrix{}, 0)
			if err == nil && result.Rows != chunk.Rows {
				err = fmt.Errorf("model returned %d rows for %d: %w", result.Rows, chunk.Rows, ErrShape)
			}
			if err == nil && x.Rows > chunk.Rows {
				full := dense.New(x.Rows, result.Cols)
				copy(full.Data, result.Data)
				result = full
			}
		} else {
			_, err = readMatrix(res[0], result, from)
		}
		if err != nil {
			return dense.Matrix{}, fmt.Errorf("predict rows %d..%d: %w", from, to-1, err)
		}
		m.noteTensorBytes(chunk.Rows * result.Cols * 4)
	}
	return result, nil
}

// checkFeatures validates a feature batch against the prediction signature.
func (m *Model) checkFeatures(x dense.Matrix) error {
	if err := x.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrShape, err)
	}
	if x.Rows == 0 {
		return ErrEmptyBatch
	}
	if dim := m.InputDim(); dim >= 0 && x.Cols != dim {
		return fmt.Errorf("%d features per row, the model takes %d: %w", x.Cols, dim, ErrShape)
	}
	if !m.opts.AllowNonFinite {
		if i := firstNonFinite(x.Data); i >= 0 {
			return &InputError{Row: i / x.Cols, Col: i % x.Cols, Err: fmt.Errorf("%v: %w", x.Data[i], ErrNonFinite)}
		}
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in data, or -1.
func firstNonFinite(data []float32) int {
	for i, v := range data {
		// v-v is 0 for every finite v and NaN for NaN and ±Inf: one float32
		// operation per value on this hot path.
		if v-v != 0 {
			return i
		}
	}
	return -1
}
