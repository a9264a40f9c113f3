package serving

import (
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

// BenchmarkDecodeRows times parsing one predict request of 10,000 features.
func BenchmarkDecodeRows(b *testing.B) {
	row := strings.TrimSuffix(strings.Repeat("0, ", 9900)+strings.Repeat("1, ", 100), ", ")
	body := []byte(`{"instances": [[` + row + `]]}`)
	spec := Spec{InputKey: "features", InputDim: 10000}
	b.SetBytes(int64(len(body)))
	var p fastjson.Parser
	for b.Loop() {
		doc, err := p.ParseBytes(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeRows(doc.Get("instances"), spec, false); err != nil {
			b.Fatal(err)
		}
	}
}
