package serving

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/tensor"
	"github.com/valyala/fastjson"
)

// BenchmarkDecode times reading predict bodies streamed into rows (the path
// of exporter models) and parsed as a tree (TF Serving's tensor rules): 1
// row of 10,000 bag-of-words counts (mostly 0, as scripts/bench_serve.py
// sends), 1 row of 256 (the fortunes model's, as the servingmodel package's
// BenchmarkLoneRequest sends) and 5,000 rows of 256 fractions.
func BenchmarkDecode(b *testing.B) {
	for _, shape := range []struct {
		rows, cols int
		value      string
	}{{1, 10000, "0, 0, 1, 0, 0, 0, 0, 0, "}, {1, 256, "1, 0, 0, 0, 0, 0, 0, 0, "}, {5000, 256, "0.25, "}} {
		values := strings.Repeat(shape.value, shape.cols)
		row := "[" + strings.Join(strings.Split(values, ", ")[:shape.cols], ", ") + "]"
		body := []byte(`{"instances": [` + strings.TrimSuffix(strings.Repeat(row+", ", shape.rows), ", ") + `]}`)
		spec := Spec{InputKey: "features", InputDim: shape.cols}
		b.Run(fmt.Sprintf("rows/%dx%d", shape.rows, shape.cols), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rb, err := decodeRowBody(body, spec)
				if err != nil || rb.err != nil || rb.x.Rows != shape.rows {
					b.Fatal(err, rb.err)
				}
			}
		})
		b.Run(fmt.Sprintf("tree/%dx%d", shape.rows, shape.cols), func(b *testing.B) {
			sig := tensor.Signature{Inputs: map[string]tensor.Spec{"features": {DType: tensor.Float32}}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var p fastjson.Parser
				doc, err := p.ParseBytes(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := decodeTensors(doc.Get("instances"), sig, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
