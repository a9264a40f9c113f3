package serving

import (
	"math"
	"runtime"
	"strconv"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// FuzzDecodeRowBody feeds arbitrary predict bodies, in the row and the
// columnar format, to the streaming decoder of row and text models: it
// must not panic; what it returns must be consistent (rows of the input's
// width, texts only for models that take them); and for small bodies it
// must allocate no more than admission charges (rowsPathFactor times the
// body, with the body itself, plus requestOverhead).
func FuzzDecodeRowBody(f *testing.F) {
	for _, seed := range []string{
		`{"instances": [[1, 2, 3], [4, 5, 6]]}`, `{"inputs": [[1, 2, 3]]}`, `{"inputs": {"features": [[1, 2, 3]]}}`,
		`{"instances": [{"features": [1, 2, 3]}], "signature_name": "serving_default"}`,
		`{"instances": ["a text", "another"]}`, `{"instances": [["a text"]]}`, `{"instances": [{"text": "a"}]}`,
		`{"inputs": ["a", "b"]}`, `{"instances": [1, 2]}`, `{"instances": [[1, 2], [3]]}`, `{"instances": [[[[[[1]]]]]]}`,
		`{"instances": [{"b64": "AA=="}]}`, `{"signature_name": "other", "instances": [[1]]}`, `{"instances": [[1e999, -0, 1.5e-7]]}`,
	} {
		f.Add([]byte(seed))
	}
	specs := []Spec{
		{Signature: "serving_default", InputKey: "features", InputDim: 3},
		{Signature: "serving_default", InputKey: "features", InputDim: 1, Input: InputRowsOrText},
		{Signature: "serving_default", InputKey: "text", InputDim: -1, Input: InputText},
		{Signature: "serving_default", InputKey: "features", InputDim: -1},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, spec := range specs {
			var before, after runtime.MemStats
			small := len(body) <= 4096
			if small {
				runtime.ReadMemStats(&before)
			}
			rb, err := decodeRowBody(body, spec)
			if small {
				runtime.ReadMemStats(&after)
				if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(rowsPathFactor-1)*uint64(len(body))+requestOverhead; got > limit {
					t.Fatalf("spec %+v: a %d-byte body allocated %d bytes, more than the %d charged", spec, len(body), got, limit)
				}
			}
			if err != nil || rb.err != nil {
				continue
			}
			switch {
			case rb.x.Rows > 0 && len(rb.texts) > 0:
				t.Fatalf("spec %+v: %d rows and %d texts from one body", spec, rb.x.Rows, len(rb.texts))
			case len(rb.texts) > 0 && !spec.Input.texts():
				t.Fatalf("spec %+v: texts for a model that takes numbers", spec)
			case rb.x.Rows*rb.x.Cols != len(rb.x.Data):
				t.Fatalf("spec %+v: %d rows of %d, %d values", spec, rb.x.Rows, rb.x.Cols, len(rb.x.Data))
			case spec.InputDim > 0 && rb.x.Rows > 0 && rb.x.Cols != spec.InputDim:
				t.Fatalf("spec %+v: rows of %d features", spec, rb.x.Cols)
			case rb.x.Rows == 0 && len(rb.texts) == 0 && (rb.signature == "" || rb.signature == spec.Signature):
				t.Fatalf("spec %+v: no instances and no error", spec)
			}
		}
	})
}

// FuzzParseNumber checks that every JSON number becomes the float32 that
// strconv.ParseFloat's float64, rounded once, gives: TF Serving's rule.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "1", "0.25", "-12.5", "123456789012345", "1234567890123456", "0.1", "3.4028235e38", "1e400", "-0.000001", "9007199254740993", "0.30000000000000004"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !jsontext.Value(s).IsValid() || jsontext.Value(s).Kind() != '0' {
			return
		}
		want, wantErr := strconv.ParseFloat(s, 64)
		got, err := parseNumber(jsontext.Value(s))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("parseNumber(%q) error %v, strconv %v", s, err, wantErr)
		}
		if err == nil && math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("parseNumber(%q) = %v, strconv gives %v", s, got, float32(want))
		}
	})
}
