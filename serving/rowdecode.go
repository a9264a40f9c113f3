package serving

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/kerasgo/kerasgo/dense"
)

// rowBody is a predict body read for a model that takes rows of numbers or
// raw texts: every instance streamed token by token into the feature matrix
// (or the text list), with no parse tree. A parse tree costs about 200 bytes
// a JSON number (fastjson's values, measured); this costs the 4 bytes of the
// float32 it becomes.
type rowBody struct {
	// signature is the body's signature_name ("" when absent or empty).
	signature string
	// columnar says the instances came as "inputs", not "instances".
	columnar bool
	x        dense.Matrix // numeric instances
	texts    []string     // string instances (Spec.Input.texts())
	// err is the first error in the instances. It is kept, not returned,
	// when signature_name names another signature: the body is then read
	// again as that signature's tensors.
	err error
}

// decodeRowBody reads a predict body for a Spec.Input.rows() (or Spec.Input.texts(),
// or non-TensorModel) model. JSON syntax errors are returned at once; an
// error in the instances is left in rowBody.err (see there).
//
// The decoder is jsontext, the Go team's streaming tokenizer: a hand-written
// scanner would repeat its validation, and encoding/json's Token API boxes
// every number (one allocation each).
func decodeRowBody(body []byte, spec Spec) (rowBody, error) {
	var rb rowBody
	if len(bytes.TrimSpace(body)) == 0 {
		return rb, badRequest("JSON Parse error: The document is empty")
	}
	r := &rowReader{
		d:      jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)),
		spec:   spec,
		values: bytes.Count(body, []byte{','}) + 1,
		rb:     &rb,
	}
	tok, err := r.d.ReadToken()
	if err != nil {
		return rb, syntaxError(err)
	}
	if tok.Kind() != '{' {
		return rb, badRequest("JSON Parse error: the body must be a JSON object")
	}
	var haveSig, haveInstances, haveInputs bool
	for {
		k, err := r.peek()
		if err != nil {
			return rb, err
		}
		if k == '}' {
			break
		}
		name, err := r.d.ReadToken()
		if err != nil {
			return rb, syntaxError(err)
		}
		switch key := name.String(); {
		case key == "signature_name" && !haveSig:
			haveSig = true
			if k, err = r.peek(); err != nil {
				return rb, err
			}
			if k != '"' {
				return rb, badRequest("'signature_name' key must be a string value.")
			}
			tok, err := r.read()
			if err != nil {
				return rb, err
			}
			rb.signature = tok.String()
		case (key == "instances" && !haveInstances) || (key == "inputs" && !haveInputs):
			if haveInstances || haveInputs {
				return rb, badRequest("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
			}
			haveInstances, haveInputs = key == "instances", key == "inputs"
			rb.columnar = haveInputs
			if err := r.instances(); err != nil {
				if isSyntax(err) {
					return rb, err
				}
				rb.err = err
				// Step out of the instances to read on (signature_name may follow).
				if err := r.skipTo(1); err != nil {
					return rb, err
				}
			}
		default: // a repeated key (the first counts, as in fastjson) or one TF Serving ignores
			if err := r.d.SkipValue(); err != nil {
				return rb, syntaxError(err)
			}
		}
	}
	if _, err := r.d.ReadToken(); err != nil { // the closing '}'
		return rb, syntaxError(err)
	}
	if _, err := r.d.ReadToken(); err != io.EOF {
		return rb, badRequest("JSON Parse error: Invalid value: unexpected data after the body's object")
	}
	if !haveInstances && !haveInputs {
		return rb, badRequest("Missing 'inputs' or 'instances' key")
	}
	return rb, nil
}

// rowReader streams one body's instances.
type rowReader struct {
	d      *jsontext.Decoder
	spec   Spec
	values int // most numbers the body can hold
	rb     *rowBody
}

// jsonSyntaxError marks an error of the JSON itself, as opposed to one in
// what it holds.
type jsonSyntaxError struct{ err error }

func (e jsonSyntaxError) Error() string { return e.err.Error() }
func (e jsonSyntaxError) Unwrap() error { return e.err }

func syntaxError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return jsonSyntaxError{badRequest("JSON Parse error: Invalid value: %v", err)}
}

func isSyntax(err error) bool {
	var se jsonSyntaxError
	return errors.As(err, &se)
}

// read reads the next token.
func (r *rowReader) read() (jsontext.Token, error) {
	tok, err := r.d.ReadToken()
	if err != nil {
		return tok, syntaxError(err)
	}
	return tok, nil
}

// peek returns the next token's kind, or the syntax error that stops it.
func (r *rowReader) peek() (jsontext.Kind, error) {
	if k := r.d.PeekKind(); k != jsontext.KindInvalid {
		return k, nil
	}
	_, err := r.d.ReadToken()
	if err == nil {
		err = errors.New("no value")
	}
	return 0, syntaxError(err)
}

// skipTo reads on until the decoder is back at nesting depth (0: the
// body's top level, 1: inside its object).
func (r *rowReader) skipTo(depth int) error {
	for r.d.StackDepth() > depth {
		k, err := r.peek()
		if err != nil {
			return err
		}
		if k == '}' || k == ']' {
			if _, err := r.d.ReadToken(); err != nil {
				return syntaxError(err)
			}
			continue
		}
		if err := r.d.SkipValue(); err != nil { // a whole value, or an object's name
			return syntaxError(err)
		}
	}
	return nil
}

// kindName names a token kind as the row errors do.
func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't':
		return "true"
	case 'f':
		return "false"
	case 'n':
		return "null"
	}
	return "invalid"
}

// instances reads the value of "instances" or "inputs": a list of
// instances, or (columnar) an object holding one under the input key and
// nothing else.
func (r *rowReader) instances() error {
	k, err := r.peek()
	if err != nil {
		return err
	}
	if !r.rb.columnar || k != '{' {
		return r.list()
	}
	if _, err := r.read(); err != nil { // '{'
		return err
	}
	found := false
	for {
		if k, err = r.peek(); err != nil {
			return err
		}
		if k == '}' {
			if _, err := r.read(); err != nil {
				return err
			}
			break
		}
		name, err := r.d.ReadToken()
		if err != nil {
			return syntaxError(err)
		}
		if found || name.String() != r.spec.InputKey {
			return badRequest("inputs must hold exactly the input %q", r.spec.InputKey)
		}
		found = true
		if err := r.list(); err != nil {
			return err
		}
	}
	if !found {
		return badRequest("inputs must hold exactly the input %q", r.spec.InputKey)
	}
	return nil
}

// list reads a non-empty list of instances.
func (r *rowReader) list() error {
	k, err := r.peek()
	if err != nil {
		return err
	}
	if k != '[' {
		if err := r.d.SkipValue(); err != nil {
			return syntaxError(err)
		}
		return badRequest("expected a list of instances, got %s", kindName(k))
	}
	if _, err := r.read(); err != nil { // '['
		return err
	}
	n := 0
	for {
		if k, err = r.peek(); err != nil {
			return err
		}
		if k == ']' {
			if _, err := r.read(); err != nil {
				return err
			}
			break
		}
		if err := r.instance(n, k); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return badRequest("no instances")
	}
	return nil
}

// instance reads instance i, whose first token is of kind k.
func (r *rowReader) instance(i int, k jsontext.Kind) error {
	if k != '{' || (r.rb.columnar && !r.spec.Input.texts()) {
		return r.value(i, k)
	}
	// An object: {"<input key>": value}.
	if _, err := r.read(); err != nil { // '{'
		return err
	}
	found := false
	for {
		k, err := r.peek()
		if err != nil {
			return err
		}
		if k == '}' {
			if _, err := r.read(); err != nil {
				return err
			}
			break
		}
		name, err := r.d.ReadToken()
		if err != nil {
			return syntaxError(err)
		}
		key := name.String()
		if k, err = r.peek(); err != nil {
			return err
		}
		switch {
		case key == r.spec.InputKey && !found:
			found = true
			if err := r.value(i, k); err != nil {
				return err
			}
		case key == "b64" && !found && r.spec.Input != InputText:
			return badRequest("instance %d: {\"b64\": …} strings need a string input; input %q takes float32 features", i, r.spec.InputKey)
		default:
			return badRequest("instance %d must hold exactly the input %q", i, r.spec.InputKey)
		}
	}
	if !found {
		return badRequest("instance %d must hold exactly the input %q", i, r.spec.InputKey)
	}
	return nil
}

// value reads one instance's value: a text, a list of numbers, or a bare
// number when the input takes one feature.
func (r *rowReader) value(i int, k jsontext.Kind) error {
	rb := r.rb
	if k == '"' || (r.spec.Input == InputText && k == '[') {
		return r.text(i, k)
	}
	if len(rb.texts) > 0 {
		return badRequest("instance %d: want a text, as instance 0 is; got %s", i, kindName(k))
	}
	if r.spec.Input == InputText {
		return badRequest("instance %d: model input %q takes a string, got %s", i, r.spec.InputKey, kindName(k))
	}
	x := &rb.x
	if x.Data == nil {
		// Room for every number the body can hold (at most one a comma,
		// plus one), so the matrix is never regrown and copied.
		x.Data = make([]float32, 0, r.values)
	}
	start := len(x.Data)
	switch {
	case k == '0' && r.spec.InputDim == 1 && r.spec.Input != InputMatrix:
		// A bare number is a one-feature row of the exporter's models; TF
		// Serving makes a vector of such instances, so InputMatrix leaves
		// them to its tensors.
		tok, err := r.read()
		if err != nil {
			return err
		}
		f, err := tok.Float()
		if err != nil {
			return badRequest("instance %d: %v", i, err)
		}
		x.Data = append(x.Data, float32(f))
	case k == '[':
		if _, err := r.read(); err != nil { // '['
			return err
		}
		for j := 0; ; j++ {
			if r.d.PeekKind() == ']' {
				if _, err := r.read(); err != nil {
					return err
				}
				break
			}
			v, err := r.d.ReadValue()
			if err != nil {
				return syntaxError(err)
			}
			if k := v.Kind(); k != '0' {
				return badRequest("instance %d, feature %d: want a number, got %s", i, j, kindName(k))
			}
			f, err := parseNumber(v)
			if err != nil {
				return badRequest("instance %d, feature %d: %v", i, j, err)
			}
			x.Data = append(x.Data, f)
		}
	default:
		return badRequest("instance %d: want a list of numbers, got %s", i, kindName(k))
	}
	width := len(x.Data) - start
	if r.spec.InputDim >= 0 && width != r.spec.InputDim {
		return badRequest("instance %d has %d features, input %q takes %d", i, width, r.spec.InputKey, r.spec.InputDim)
	}
	if i == 0 {
		x.Cols = width
	} else if width != x.Cols {
		return badRequest("instance %d has %d features, instance 0 has %d", i, width, x.Cols)
	}
	x.Rows++
	return nil
}

// text reads a string instance (or a one-string list, a row of a rank-2
// string input).
func (r *rowReader) text(i int, k jsontext.Kind) error {
	rb := r.rb
	if !r.spec.Input.texts() {
		return badRequest("instance %d is text, and model input %q takes numbers (the model has no vectorizer)", i, r.spec.InputKey)
	}
	if rb.x.Rows > 0 {
		return badRequest("instance %d: want a list of numbers, as instance 0 is; got a text", i)
	}
	wrapped := k == '['
	if wrapped {
		if _, err := r.read(); err != nil { // '['
			return err
		}
		var err error
		if k, err = r.peek(); err != nil {
			return err
		}
	}
	if k != '"' {
		return badRequest("instance %d: model input %q takes a string, got %s", i, r.spec.InputKey, kindName(k))
	}
	tok, err := r.read()
	if err != nil {
		return err
	}
	rb.texts = append(rb.texts, tok.String())
	if wrapped {
		k, err := r.peek()
		if err != nil {
			return err
		}
		if k != ']' {
			return badRequest("instance %d: model input %q takes one string a row", i, r.spec.InputKey)
		}
		if _, err := r.read(); err != nil {
			return err
		}
	}
	return nil
}

// parseNumber converts a JSON number to float32 the way TF Serving does for
// a DT_FLOAT input: parsed as float64, then rounded once.
func parseNumber(v jsontext.Value) (float32, error) {
	if f, ok := shortDecimal(v); ok {
		return float32(f), nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, err
	}
	return float32(f), nil
}

// shortDecimal reads the numbers most bodies hold (counts, one-hot flags
// and short fractions: a sign, at most 15 digits, a point, no exponent)
// without strconv's general machinery. Written by hand because it is the
// inner loop of every predict body and costs a third of strconv's time.
// Both the digits and the power of ten are exact in float64, so their one
// correctly rounded quotient is the float64 strconv.ParseFloat returns.
// v is a number the decoder has already checked against JSON's grammar.
func shortDecimal(v []byte) (float64, bool) {
	digits := bytes.TrimPrefix(v, []byte("-"))
	var n int64
	count, frac := 0, -1
	for _, c := range digits {
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int64(c-'0')
			count++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if count == 0 || count > 15 {
		return 0, false
	}
	f := float64(n)
	if frac > 0 {
		f /= math.Pow10(frac)
	}
	if len(digits) != len(v) {
		f = -f // -0 stays negative zero, as strconv gives it.
	}
	return f, true
}
