package rowio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/kerasgo/kerasgo/dense"
)

// JSONLOptions configure a JSON Lines reader.
type JSONLOptions struct {
	// Dim is the number of features per row: the length of every "x", and
	// the bound of every index in "indices".
	Dim int
	// Vectorizer, when set, turns {"text": "..."} rows into features.
	Vectorizer Vectorizer
	// Sparse fills text rows' Indices and Values instead of Features.
	Sparse bool
}

// JSONLReader reads JSON Lines, one JSON object an example:
//
//	{"id": "a1", "x": [0, 1, 0.5]}                       dense
//	{"id": 17, "indices": [1, 2], "values": [1, 0.5]}    sparse, zero-based
//	{"indices": [1, 2], "labels": ["a", "b"]}            values default to 1
//
// "id" is a string or a number, and "label" (one) or "labels" (a list) hold
// strings or numbers; numbers keep their text as written ("17", "1e3"). A
// row has either "x" or "indices", never both. Keys match exactly; others
// are ignored, and a null value counts as absent. Blank lines are skipped.
//
// A row {"text": "..."} without features is vectorized with
// JSONLOptions.Vectorizer; without one it is reported as ErrUnsupported.
//
// Every error about a line is a *ParseError; the next Read goes on with the
// following line.
type JSONLReader struct {
	s    *bufio.Scanner
	path string
	opts JSONLOptions
	line int

	obj  map[string]json.RawMessage // the line's keys, reused
	elem []json.RawMessage          // an array's elements, reused
	idx  []int                      // sparse indices, reused
}

// NewJSONLReader returns a reader of r; path names the input in errors.
func NewJSONLReader(r io.Reader, path string, opts JSONLOptions) (*JSONLReader, error) {
	if opts.Dim <= 0 {
		return nil, fmt.Errorf("jsonl reader for %s: feature count %d, want > 0", path, opts.Dim)
	}
	return &JSONLReader{s: newLineScanner(r), path: path, opts: opts, obj: make(map[string]json.RawMessage)}, nil
}

// Read fills row with the next example: Features holds Dim values, ID the
// "id" field and Labels the "label" or "labels" field, as text.
func (j *JSONLReader) Read(row *Row) error {
	for j.s.Scan() {
		j.line++
		text := bytes.Trim(j.s.Bytes(), " \t\r\n") // JSON whitespace
		if len(text) == 0 {
			continue
		}
		return j.parse(row, text)
	}
	if err := j.s.Err(); err != nil {
		return scanError(j.path, j.line, err)
	}
	return io.EOF
}

func (j *JSONLReader) errorf(field, format string, args ...any) error {
	return &ParseError{Path: j.path, Line: j.line, Field: field, Err: fmt.Errorf(format+": %w", append(args, ErrFormat)...)}
}

func (j *JSONLReader) parse(row *Row, text []byte) error {
	row.Line, row.ID = j.line, ""
	row.Labels = row.Labels[:0]
	if text[0] != '{' {
		if !json.Valid(text) {
			return j.invalid(json.Unmarshal(text, new(any)))
		}
		return j.errorf("", "a JSON %s, want an object", jsonKind(text))
	}
	clear(j.obj)
	if err := json.Unmarshal(text, &j.obj); err != nil {
		return j.invalid(err)
	}
	x, indices, values := j.field("x"), j.field("indices"), j.field("values")
	switch {
	case x != nil && indices != nil:
		return j.errorf("x", `both "x" and "indices", want one`)
	case x == nil && indices == nil:
		if raw := j.field("text"); raw != nil {
			if j.opts.Vectorizer == nil {
				return &ParseError{Path: j.path, Line: j.line, Field: "text",
					Err: fmt.Errorf(`raw text needs the model's vectorizer, and this model has none (export it with kerasgo export --vectorizer); give features as "x" or "indices": %w`, ErrUnsupported)}
			}
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				return j.errorf("text", "want a string")
			}
			if err := j.parseID(row); err != nil {
				return err
			}
			if err := j.parseLabels(row); err != nil {
				return err
			}
			SetText(row, j.opts.Vectorizer, text, j.opts.Sparse)
			return nil
		}
		return j.errorf("", `no features: want "x" (dense) or "indices" (sparse)`)
	case x != nil && values != nil:
		return j.errorf("values", `"values" goes with "indices", not "x"`)
	}
	if err := j.parseID(row); err != nil {
		return err
	}
	if err := j.parseLabels(row); err != nil {
		return err
	}
	if x != nil {
		return j.parseDense(row, x)
	}
	return j.parseSparse(row, indices, values)
}

// invalid reports a line that is not JSON.
func (j *JSONLReader) invalid(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &ParseError{Path: j.path, Line: j.line, Err: fmt.Errorf("invalid JSON at byte %d: %w: %w", se.Offset, err, ErrFormat)}
	}
	return &ParseError{Path: j.path, Line: j.line, Err: fmt.Errorf("invalid JSON: %w: %w", err, ErrFormat)}
}

// field returns the line's value for key, or nil when absent or null.
func (j *JSONLReader) field(key string) json.RawMessage {
	v := j.obj[key]
	if string(v) == "null" {
		return nil
	}
	return v
}

// jsonKind names the JSON type of a valid value.
func jsonKind(v []byte) string {
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func isJSONNumber(v []byte) bool { return jsonKind(v) == "number" }

// jsonScalar returns a string's value, or a number's text as written.
func jsonScalar(v json.RawMessage) (string, bool) {
	switch jsonKind(v) {
	case "number":
		return string(v), true
	case "string":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	}
	return "", false
}

func (j *JSONLReader) parseID(row *Row) error {
	v := j.field("id")
	if v == nil {
		return nil
	}
	id, ok := jsonScalar(v)
	if !ok {
		return j.errorf("id", "a JSON %s, want a string or a number", jsonKind(v))
	}
	row.ID = id
	return nil
}

func (j *JSONLReader) parseLabels(row *Row) error {
	one, many := j.field("label"), j.field("labels")
	switch {
	case one != nil && many != nil:
		return j.errorf("labels", `both "label" and "labels", want one`)
	case one != nil:
		lab, ok := jsonScalar(one)
		if !ok {
			return j.errorf("label", "a JSON %s, want a string or a number", jsonKind(one))
		}
		row.Labels = append(row.Labels, lab)
	case many != nil:
		elems, err := j.array("labels", many)
		if err != nil {
			return err
		}
		for i, e := range elems {
			lab, ok := jsonScalar(e)
			if !ok {
				return j.errorf("labels", "element %d is a JSON %s, want a string or a number", i, jsonKind(e))
			}
			row.Labels = append(row.Labels, lab)
		}
	}
	return nil
}

// array splits a JSON array into its elements, which stay valid until the
// next call.
func (j *JSONLReader) array(field string, v json.RawMessage) ([]json.RawMessage, error) {
	if jsonKind(v) != "array" {
		return nil, j.errorf(field, "a JSON %s, want an array", jsonKind(v))
	}
	if err := json.Unmarshal(v, &j.elem); err != nil {
		return nil, j.errorf(field, "%v", err) // unreachable: v is valid JSON
	}
	return j.elem, nil
}

// jsonFloat32 parses a JSON number as float32; out of range gives ±Inf.
func jsonFloat32(v []byte) float32 {
	f, _ := strconv.ParseFloat(string(v), 32) // a JSON number is valid Go syntax
	return float32(f)
}

func (j *JSONLReader) parseDense(row *Row, x json.RawMessage) error {
	elems, err := j.array("x", x)
	if err != nil {
		return err
	}
	if len(elems) != j.opts.Dim {
		return j.errorf("x", "%d values, want the model's %d features", len(elems), j.opts.Dim)
	}
	row.Features = dense.Resize(row.Features, j.opts.Dim)
	for i, e := range elems {
		if !isJSONNumber(e) {
			return j.errorf("x", "element %d is a JSON %s, want a number", i, jsonKind(e))
		}
		row.Features[i] = jsonFloat32(e)
	}
	return nil
}

func (j *JSONLReader) parseSparse(row *Row, indices, values json.RawMessage) error {
	elems, err := j.array("indices", indices)
	if err != nil {
		return err
	}
	j.idx = j.idx[:0]
	for i, e := range elems {
		if !isJSONNumber(e) {
			return j.errorf("indices", "element %d is a JSON %s, want an integer", i, jsonKind(e))
		}
		n, err := strconv.Atoi(string(e))
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return j.errorf("indices", "element %d (%s) is not an integer", i, e)
		}
		if err != nil || n < 0 || n >= j.opts.Dim {
			return j.errorf("indices", "element %d: feature index %s outside the model's %d features", i, e, j.opts.Dim)
		}
		j.idx = append(j.idx, n)
	}
	row.Features = dense.Resize(row.Features, j.opts.Dim)
	if values == nil {
		for _, n := range j.idx {
			row.Features[n] = 1
		}
		return nil
	}
	elems, err = j.array("values", values)
	if err != nil {
		return err
	}
	if len(elems) != len(j.idx) {
		return j.errorf("values", "%d values for %d indices", len(elems), len(j.idx))
	}
	for i, e := range elems {
		if !isJSONNumber(e) {
			return j.errorf("values", "element %d is a JSON %s, want a number", i, jsonKind(e))
		}
		row.Features[j.idx[i]] = jsonFloat32(e)
	}
	return nil
}
