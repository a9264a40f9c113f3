package requestlog

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// RowReader reads the rows of the Predict requests in a request log as a
// rowio.RowReader, to score logged traffic again (with another version) or
// to train on it once labelled. A request of one row gives a row whose ID
// is the request's id; a request of n rows gives rows ID#0 to ID#n-1. Row.Line
// is the record's number in the file.
//
// Records of other kinds (Classify, Regress, MultiInference), and Predict
// requests that are not one float32 matrix or one list of texts, are
// skipped and counted (Skipped). A torn last record (a crash mid-write) ends
// the file like its end (Torn).
//
// The answer each row got when it was served is kept until Answer takes
// it: read rows whose answers are never taken are held in memory.
type RowReader struct {
	r    *tfrecord.Reader
	path string
	opts rowio.ReaderOptions

	record int // records read
	// rows of the current record not yet returned
	queue  []queued
	answer map[string]Answer
	mu     sync.Mutex // guards answer: Answer is called by another goroutine than Read

	// Skipped counts the records that give no rows; Torn says the file
	// ended in a torn record.
	Skipped int
	Torn    bool
}

type queued struct {
	id       string
	features []float32
	text     string
	isText   bool
}

// Answer is what a served version answered a logged row.
type Answer struct {
	Model   string
	Version int64
	// Output is the row of the response's output tensor (its only one).
	Output []float32
}

// NewRowReader returns a reader of the request log r (path names it in
// errors). opts.Dim, if set, is the width every float row must have;
// opts.Vectorizer, if set, turns logged texts into features (else they
// are rows of Row.Text, for a model that takes strings).
func NewRowReader(r io.Reader, path string, opts rowio.ReaderOptions) *RowReader {
	return &RowReader{r: tfrecord.NewReader(r, MaxRecordBytes), path: path, opts: opts, answer: map[string]Answer{}}
}

// Read fills row with the next logged row; io.EOF after the last.
func (lr *RowReader) Read(row *rowio.Row) error {
	for len(lr.queue) == 0 {
		if err := lr.next(); err != nil {
			return err
		}
	}
	q := lr.queue[0]
	lr.queue = lr.queue[1:]
	row.Line, row.ID, row.Labels = lr.record, q.id, row.Labels[:0]
	row.Indices, row.Values, row.Text = row.Indices[:0], row.Values[:0], ""
	switch {
	case q.isText && lr.opts.Vectorizer != nil:
		rowio.SetText(row, lr.opts.Vectorizer, q.text, lr.opts.Sparse)
	case q.isText:
		row.Features, row.Text = row.Features[:0], q.text
	default:
		row.Features = append(row.Features[:0], q.features...)
	}
	return nil
}

// Answer returns, and forgets, the answer the logged row of that id got.
func (lr *RowReader) Answer(id string) (Answer, bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	a, ok := lr.answer[id]
	delete(lr.answer, id)
	return a, ok
}

// next reads records until one gives rows.
func (lr *RowReader) next() error {
	rec, err := lr.r.Next()
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, tfrecord.ErrTruncated):
		lr.Torn = true
		return io.EOF
	case err != nil:
		return fmt.Errorf("request log %s: %w", lr.path, err)
	}
	lr.record++
	log := &tfservingpb.PredictionLog{}
	if err := proto.Unmarshal(rec, log); err != nil {
		return &rowio.ParseError{Path: lr.path, Line: lr.record, Err: fmt.Errorf("not a tensorflow.serving.PredictionLog: %w: %w", err, rowio.ErrFormat)}
	}
	p := log.GetPredictLog()
	inputs := p.GetRequest().GetInputs()
	if p == nil || len(inputs) != 1 {
		lr.Skipped++
		return nil
	}
	var in *tensor.Tensor
	for alias, tp := range inputs {
		t, err := tensorproto.FromProto(alias, tp, func(int64) error { return nil })
		if err != nil {
			return &rowio.ParseError{Path: lr.path, Line: lr.record, Err: fmt.Errorf("%w: %w", err, rowio.ErrFormat)}
		}
		in = &t
	}
	id := RequestID(log)
	if id == "" {
		id = "record-" + strconv.Itoa(lr.record)
	}
	rows, err := lr.rows(id, *in)
	if err != nil {
		return &rowio.ParseError{Path: lr.path, Line: lr.record, Field: "inputs", Err: fmt.Errorf("%w: %w", err, rowio.ErrFormat)}
	}
	if rows == nil {
		lr.Skipped++
		return nil
	}
	lr.keepAnswers(log, rows)
	lr.queue = rows
	return nil
}

// rows splits a request's input tensor into rows; nil when it is not one
// float32 matrix or one list of texts.
func (lr *RowReader) rows(id string, t tensor.Tensor) ([]queued, error) {
	name := func(i, n int) string {
		if n == 1 {
			return id
		}
		return id + "#" + strconv.Itoa(i)
	}
	switch {
	case t.DType == tensor.Float32 && len(t.Shape) == 2:
		n, d := int(t.Shape[0]), int(t.Shape[1])
		if lr.opts.Dim > 0 && d != lr.opts.Dim {
			return nil, fmt.Errorf("rows of %d features, want %d", d, lr.opts.Dim)
		}
		data := t.Data.([]float32)
		out := make([]queued, n)
		for i := range n {
			out[i] = queued{id: name(i, n), features: data[i*d : (i+1)*d]}
		}
		return out, nil
	case t.DType == tensor.String && len(t.Shape) == 1:
		data := t.Data.([][]byte)
		out := make([]queued, len(data))
		for i, b := range data {
			out[i] = queued{id: name(i, len(data)), text: string(b), isText: true}
		}
		return out, nil
	}
	return nil, nil
}

// keepAnswers keeps each row's part of the logged response, when it has
// one float32 output of a row per input row.
func (lr *RowReader) keepAnswers(log *tfservingpb.PredictionLog, rows []queued) {
	outputs := log.GetPredictLog().GetResponse().GetOutputs()
	if len(outputs) != 1 || len(rows) == 0 {
		return
	}
	for alias, tp := range outputs {
		t, err := tensorproto.FromProto(alias, tp, func(int64) error { return nil })
		if err != nil || t.DType != tensor.Float32 || len(t.Shape) == 0 || int(t.Shape[0]) != len(rows) {
			return
		}
		data := t.Data.([]float32)
		width := len(data) / len(rows)
		spec := log.GetLogMetadata().GetModelSpec()
		lr.mu.Lock()
		for i, q := range rows {
			lr.answer[q.id] = Answer{Model: spec.GetName(), Version: spec.GetVersion().GetValue(), Output: data[i*width : (i+1)*width]}
		}
		lr.mu.Unlock()
	}
}
