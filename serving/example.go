package serving

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"strconv"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/serving/tfservingpb/examplepb"
)

// Classify and regress take serialized tf.Example protos, built from the
// request's "examples" (and "context") as TF Serving builds them, with the
// Go code generated from TensorFlow's example.proto and feature.proto
// (serving/tfservingpb/examplepb).

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

// features returns the features of a JSON object of features.
func features(obj *fastjson.Object) (map[string]*examplepb.Feature, error) {
	out := map[string]*examplepb.Feature{}
	var ferr error
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if ferr != nil {
			return
		}
		out[string(k)], ferr = feature(string(k), v)
	})
	return out, ferr
}

// feature returns the Feature of one JSON feature value: a scalar or a flat
// list whose first element fixes the kind.
func feature(name string, v *fastjson.Value) (*examplepb.Feature, error) {
	items := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		items, _ = v.Array()
	}
	if len(items) == 0 {
		return &examplepb.Feature{}, nil // an empty Feature: no list
	}
	kind, err := kindOf(name, items[0])
	if err != nil {
		return nil, err
	}
	var bytesList [][]byte
	var floats []float32
	var ints []int64
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
			bytesList = append(bytesList, b)
		case floatFeature:
			floats = append(floats, float32(e.GetFloat64()))
		case int64Feature:
			n := int64(0)
			switch e.Type() {
			case fastjson.TypeTrue:
				n = 1
			case fastjson.TypeNumber:
				n = e.GetInt64()
			}
			ints = append(ints, n)
		}
	}
	switch kind {
	case bytesFeature:
		return &examplepb.Feature{Kind: &examplepb.Feature_BytesList{BytesList: &examplepb.BytesList{Value: bytesList}}}, nil
	case floatFeature:
		return &examplepb.Feature{Kind: &examplepb.Feature_FloatList{FloatList: &examplepb.FloatList{Value: floats}}}, nil
	}
	return &examplepb.Feature{Kind: &examplepb.Feature_Int64List{Int64List: &examplepb.Int64List{Value: ints}}}, nil
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
	var context map[string]*examplepb.Feature
	if c := doc.Get("context"); c != nil {
		obj, err := c.Object()
		if err != nil {
			return nil, badRequest("Example must be JSON object but got JSON %s", jsonTypeName(c))
		}
		if context, err = features(obj); err != nil {
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
		own, err := features(obj)
		if err != nil {
			return nil, err
		}
		merged := maps.Clone(context)
		if merged == nil {
			merged = own
		} else {
			maps.Copy(merged, own)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&examplepb.Example{Features: &examplepb.Features{Feature: merged}})
		if err != nil {
			return nil, fmt.Errorf("encoding tf.Example %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// classifyOrRegress answers :classify and :regress on a signature that takes
// serialized tf.Examples.
func (srv *Server) classifyOrRegress(ctx context.Context, w http.ResponseWriter, req *http.Request, v *version, verb string, res *reservation, lg restLog) error {
	if _, ok := v.model.(TensorModel); !ok {
		return badRequest("this model runs only its prediction signature; use :predict")
	}
	method := methodRegress
	if verb == "classify" {
		method = methodClassify
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
	// As over gRPC: TF Serving's checks, without the method name's.
	outputs, err := (&ModelVersion{v: v, release: func() {}}).RunExamples(ctx, method, sigName, examples)
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
		lg.examples(sigName, examples, func(spec *tfservingpb.ModelSpec, in *tfservingpb.Input) *tfservingpb.PredictionLog {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_RegressLog{RegressLog: &tfservingpb.RegressLog{
				Request:  &tfservingpb.RegressionRequest{ModelSpec: spec, Input: in},
				Response: &tfservingpb.RegressionResponse{ModelSpec: spec, Result: RegressionResult(values)},
			}}}
		})
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
		lg.examples(sigName, examples, func(spec *tfservingpb.ModelSpec, in *tfservingpb.Input) *tfservingpb.PredictionLog {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_ClassifyLog{ClassifyLog: &tfservingpb.ClassifyLog{
				Request:  &tfservingpb.ClassificationRequest{ModelSpec: spec, Input: in},
				Response: &tfservingpb.ClassificationResponse{ModelSpec: spec, Result: ClassificationResult(results)},
			}}}
		})
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

// examples logs a Classify or Regress request on serialized tf.Examples
// and its answer (if sampled): record builds the log from the request's
// model spec and its examples as an Input.
func (l restLog) examples(signature string, examples [][]byte, record func(*tfservingpb.ModelSpec, *tfservingpb.Input) *tfservingpb.PredictionLog) {
	l.log(signature, func() (*tfservingpb.PredictionLog, error) {
		list := &tfservingpb.ExampleList{Examples: make([]*examplepb.Example, len(examples))}
		for i, b := range examples {
			list.Examples[i] = &examplepb.Example{}
			if err := proto.Unmarshal(b, list.Examples[i]); err != nil {
				return nil, err
			}
		}
		spec := &tfservingpb.ModelSpec{Name: l.mv.Name(), SignatureName: signature}
		return record(spec, &tfservingpb.Input{Kind: &tfservingpb.Input_ExampleList{ExampleList: list}}), nil
	})
}

// ClassificationResult is examples' classes as TF Serving's Classify
// answers them.
func ClassificationResult(results [][]Class) *tfservingpb.ClassificationResult {
	out := &tfservingpb.ClassificationResult{}
	for _, classes := range results {
		c := &tfservingpb.Classifications{}
		for _, class := range classes {
			c.Classes = append(c.Classes, &tfservingpb.Class{Label: class.Label, Score: class.Score})
		}
		out.Classifications = append(out.Classifications, c)
	}
	return out
}

// RegressionResult is examples' values as TF Serving's Regress answers
// them.
func RegressionResult(values []float32) *tfservingpb.RegressionResult {
	out := &tfservingpb.RegressionResult{}
	for _, v := range values {
		out.Regressions = append(out.Regressions, &tfservingpb.Regression{Value: v})
	}
	return out
}
