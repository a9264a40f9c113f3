package serving

import (
	"reflect"
	"testing"

	"github.com/kerasgo/kerasgo/tensor"
	"github.com/valyala/fastjson"
)

// FuzzDecodeTensors feeds arbitrary predict bodies to the JSON → tensor
// conversion: it must not panic, and a tensor can never hold more elements
// than the body has bytes (no allocation out of proportion to the request).
func FuzzDecodeTensors(f *testing.F) {
	for _, seed := range []string{
		`{"instances": [1.0, 2.0, 5.0]}`, `{"inputs": [[1, 2], [3, 4]]}`, `{"inputs": 3}`,
		`{"instances": [{"x": [1, 2], "s": "a"}, {"x": [3, 4], "s": {"b64": "aGk="}}]}`,
		`{"instances": [[1, 2], [3, 4], [5, 6, 7]]}`, `{"instances": [[[[[[[[1]]]]]]]]}`, `{"inputs": {"x": [true, false]}}`,
	} {
		f.Add([]byte(seed))
	}
	sigs := []tensor.Signature{
		{Inputs: map[string]tensor.Spec{"x": {DType: tensor.Float32}}},
		{Inputs: map[string]tensor.Spec{"x": {DType: tensor.Int64}, "s": {DType: tensor.String}}},
		{Inputs: map[string]tensor.Spec{"x": {DType: tensor.Bool}}},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p fastjson.Parser
		doc, err := p.ParseBytes(body)
		if err != nil || doc.Type() != fastjson.TypeObject {
			return
		}
		for _, sig := range sigs {
			for _, key := range []string{"instances", "inputs"} {
				raw := doc.Get(key)
				if raw == nil {
					continue
				}
				tensors, err := decodeTensors(raw, sig, key == "inputs")
				if err != nil {
					continue
				}
				for name, ts := range tensors {
					n := reflect.ValueOf(ts.Data).Len()
					if n > len(body) {
						t.Fatalf("input %q: %d elements from a %d-byte body", name, n, len(body))
					}
					want := int64(1)
					for _, d := range ts.Shape {
						want *= d
					}
					if want != int64(n) {
						t.Fatalf("input %q: shape %v holds %d elements, data has %d", name, ts.Shape, want, n)
					}
				}
			}
		}
	})
}
