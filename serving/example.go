package serving

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protowire"
)

// Classify and regress take serialized tf.Example protos, built from the
// request's "examples" (and "context") as TF Serving builds them. The
// messages are written with protowire by hand: tf.Example is six fields
// (Example.features=1; Features.feature=1 map<string, Feature>; Feature
// bytes_list=1, float_list=2, int64_list=3, each a repeated value=1), and no
// package reachable here ships example.proto to generate from.

const (
	methodClassify = "tensorflow/serving/classify"
	methodRegress  = "tensorflow/serving/regress"
)

// featureKind is the list a JSON feature value becomes.
type featureKind int

const (
	bytesFeature featureKind = iota + 1
	floatFeature
	int64Feature
)

func (k featureKind) String() string {
	return [...]string{"", "bytes", "float", "int64"}[k]
}

// kindOf returns the feature kind of one JSON element: strings and
// {"b64": …} are bytes, numbers written with a point or an exponent floats,
// other numbers and booleans int64.
func kindOf(name string, v *fastjson.Value) (featureKind, error) {
	switch v.Type() {
	case fastjson.TypeString:
		return bytesFeature, nil
	case fastjson.TypeObject:
		if isB64(v) {
			return bytesFeature, nil
		}
	case fastjson.TypeNumber:
		for _, c := range v.String() {
			if c == '.' || c == 'e' || c == 'E' {
				return floatFeature, nil
			}
		}
		if _, err := v.Int64(); err != nil {
			return 0, badRequest("Feature: %s has uint64_t element. Only int64_t is supported.", name)
		}
		return int64Feature, nil
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return int64Feature, nil
	}
	return 0, badRequest("Feature: %s has element with unexpected JSON type: %s", name, jsonTypeName(v))
}

// appendFeatures appends the Features message of a JSON object of features
// to dst (as Example field 1).
func appendFeatures(dst []byte, obj *fastjson.Object) ([]byte, error) {
	var features []byte
	var ferr error
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if ferr != nil {
			return
		}
		var feature []byte
		if feature, ferr = encodeFeature(string(k), v); ferr != nil {
			return
		}
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, string(k))
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendBytes(entry, feature)
		features = protowire.AppendTag(features, 1, protowire.BytesType)
		features = protowire.AppendBytes(features, entry)
	})
	if ferr != nil {
		return nil, ferr
	}
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, features), nil
}

// encodeFeature returns the Feature message of one JSON feature value: a
// scalar or a flat list whose first element fixes the kind.
func encodeFeature(name string, v *fastjson.Value) ([]byte, error) {
	items := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		items, _ = v.Array()
	}
	if len(items) == 0 {
		return nil, nil // an empty Feature: no list
	}
	kind, err := kindOf(name, items[0])
	if err != nil {
		return nil, err
	}
	var list []byte
	var packed []byte
	for _, e := range items {
		if e.Type() == fastjson.TypeArray {
			return nil, badRequest("Feature: %s has element with unexpected JSON type: Array", name)
		}
		k, err := kindOf(name, e)
		if err != nil {
			return nil, err
		}
		if k != kind && !(kind == floatFeature && k == int64Feature && e.Type() == fastjson.TypeNumber) {
			return nil, badRequest("Unexpected element type in feature: %s expecting type: %s", name, kind)
		}
		switch kind {
		case bytesFeature:
			b, err := bytesOf(e)
			if err != nil {
				return nil, err
			}
			list = protowire.AppendTag(list, 1, protowire.BytesType)
			list = protowire.AppendBytes(list, b)
		case floatFeature:
			packed = protowire.AppendFixed32(packed, math.Float32bits(float32(e.GetFloat64())))
		case int64Feature:
			n := int64(0)
			switch e.Type() {
			case fastjson.TypeTrue:
				n = 1
			case fastjson.TypeNumber:
				n = e.GetInt64()
			}
			packed = protowire.AppendVarint(packed, uint64(n))
		}
	}
	if kind != bytesFeature {
		list = protowire.AppendTag(nil, 1, protowire.BytesType)
		list = protowire.AppendBytes(list, packed)
	}
	feature := protowire.AppendTag(nil, protowire.Number(kind), protowire.BytesType)
	return protowire.AppendBytes(feature, list), nil
}

func bytesOf(v *fastjson.Value) ([]byte, error) {
	if v.Type() == fastjson.TypeObject {
		enc, _ := v.GetObject().Get("b64").StringBytes()
		b, err := base64.StdEncoding.DecodeString(string(enc))
		if err != nil {
			return nil, badRequest("Unable to base64 decode: %v", err)
		}
		return b, nil
	}
	s, _ := v.StringBytes()
	return s, nil
}

// decodeExamples builds the serialized Examples of a classify or regress
// body: each example's features, after the context's when there is one (a
// proto merge: a feature in both takes the example's value).
func decodeExamples(doc *fastjson.Value, method string) ([][]byte, error) {
	var context []byte
	if c := doc.Get("context"); c != nil {
		obj, err := c.Object()
		if err != nil {
			return nil, badRequest("Example must be JSON object but got JSON %s", jsonTypeName(c))
		}
		if context, err = appendFeatures(nil, obj); err != nil {
			return nil, err
		}
	}
	ex := doc.Get("examples")
	if ex == nil {
		return nil, badRequest("When method is %s, key 'examples' is expected and was not found", method)
	}
	items, err := ex.Array()
	if err != nil {
		return nil, badRequest("Expecting 'examples' value to be an list/array")
	}
	if len(items) == 0 {
		return nil, badRequest("'examples' value is an empty array")
	}
	out := make([][]byte, len(items))
	for i, item := range items {
		obj, err := item.Object()
		if err != nil {
			return nil, badRequest("Example must be JSON object but got JSON %s", jsonTypeName(item))
		}
		b, err := appendFeatures(append([]byte(nil), context...), obj)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// classifyOrRegress answers :classify and :regress on a signature that takes
// serialized tf.Examples.
func (srv *Server) classifyOrRegress(ctx context.Context, w http.ResponseWriter, req *http.Request, v *version, verb string, res *reservation) error {
	tm, ok := v.model.(TensorModel)
	if !ok {
		return badRequest("this model runs only its prediction signature; use :predict")
	}
	method := methodRegress
	if verb == "classify" {
		method = methodClassify
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(v.spec.Signatures)), func(s SignatureSpec) bool { return s.MethodName == method }) {
		// Nothing to run: answered before the body is read (and held).
		return badRequest("this model has no signature with method_name %s; use :predict", method)
	}
	doc, done, err := srv.readJSON(req, res)
	if err != nil {
		return err
	}
	defer done()
	// The body is read before the signature is looked up, as TF Serving
	// does: its errors come first.
	examples, err := decodeExamples(doc, verb)
	if err != nil {
		return err
	}
	sigName := "serving_default"
	if n := doc.Get("signature_name"); n != nil {
		s, err := n.StringBytes()
		if err != nil {
			return badRequest("'signature_name' key must be a string value.")
		}
		sigName = string(s)
	}
	sig, ok := v.spec.Signatures[sigName]
	if !ok {
		return badRequest("No signature was found with the name: %s", sigName)
	}
	kind := "regression"
	if verb == "classify" {
		kind = "classification"
	}
	if sig.MethodName != method {
		return badRequest("Expected %s signature method_name to be %s. Was: %s", kind, method, sig.MethodName)
	}
	if len(sig.Inputs) != 1 {
		return badRequest("Expected one input Tensor.")
	}
	in := Tensor{DType: "string", Shape: []int64{int64(len(examples))}, Data: examples}
	outputs, err := tm.Run(ctx, sigName, map[string]Tensor{sortedNames(sig.Inputs)[0]: in})
	if err != nil {
		return err
	}
	out := []byte(`{"results":[`)
	n := int64(len(examples))
	if verb == "regress" {
		values, err := Regressions(outputs, n)
		if err != nil {
			return fmt.Errorf("signature %q: %w", sigName, err)
		}
		for i, f := range values {
			if i > 0 {
				out = append(out, ',')
			}
			out = AppendFloat(out, float64(f), 32)
		}
	} else {
		results, err := Classifications(outputs, n)
		if err != nil {
			return fmt.Errorf("signature %q: %w", sigName, err)
		}
		for i, classes := range results {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, '[')
			for j, c := range classes {
				if j > 0 {
					out = append(out, ',')
				}
				out = append(out, '[')
				out = strconv.AppendQuote(out, c.Label)
				out = append(out, ',')
				out = AppendFloat(out, float64(c.Score), 32)
				out = append(out, ']')
			}
			out = append(out, ']')
		}
	}
	out = append(out, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(out)
	return err
}
