package tensor

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// TestRawLayout reads and writes the Open Inference Protocol's raw layout
// with bytes written out by hand from its definition (little-endian IEEE
// 754, one byte a BOOL, a 4-byte length before each BYTES element), and
// refuses data that does not fit the shape.
func TestRawLayout(t *testing.T) {
	cases := []struct {
		name    string
		d       DType
		shape   []int64
		raw     string
		want    any
		wantErr string
	}{
		{"FP32", Float32, []int64{1, 2}, "\x00\x00\xc0\x3f\x00\x00\x00\xc0", []float32{1.5, -2}, ""},
		{"FP64", Float64, []int64{1}, "\x00\x00\x00\x00\x00\x00\xf8\x3f", []float64{1.5}, ""},
		{"INT32", Int32, []int64{2}, "\xff\xff\xff\xff\x07\x00\x00\x00", []int32{-1, 7}, ""},
		{"INT64", Int64, []int64{1}, "\xfe\xff\xff\xff\xff\xff\xff\xff", []int64{-2}, ""},
		{"BOOL", Bool, []int64{3}, "\x01\x00\x01", []bool{true, false, true}, ""},
		{"BYTES", String, []int64{2}, "\x03\x00\x00\x00abc\x00\x00\x00\x00", [][]byte{[]byte("abc"), {}}, ""},
		{"FP32 short", Float32, []int64{2}, "\x00\x00\xc0\x3f", nil, "4 bytes of raw data for 2 FP32 elements"},
		{"BOOL not 0 or 1", Bool, []int64{1}, "\x02", nil, "byte 2"},
		{"BYTES length past the end", String, []int64{1}, "\x05\x00\x00\x00abc", nil, "length 5, but 3 bytes are left"},
		{"BYTES trailing bytes", String, []int64{1}, "\x01\x00\x00\x00ab", nil, "1 bytes of raw data after"},
		{"negative dimension", Float32, []int64{-1}, "", nil, "negative dimension"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeRaw(c.d, c.shape, []byte(c.raw))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Data, c.want) || !reflect.DeepEqual(got.Shape, c.shape) {
				t.Fatalf("got %v %v, want %v %v", got.Data, got.Shape, c.want, c.shape)
			}
			back, err := AppendRaw(nil, got)
			if err != nil || !bytes.Equal(back, []byte(c.raw)) {
				t.Fatalf("written back as %q (%v), want %q", back, err, c.raw)
			}
		})
	}
}

func TestOIPDataTypes(t *testing.T) {
	for _, d := range []DType{Float32, Float64, Int32, Int64, Bool, String} {
		if back, ok := FromOIPDataType(d.OIPDataType()); !ok || back != d {
			t.Errorf("%s: %q reads back as %q, %v", d, d.OIPDataType(), back, ok)
		}
	}
	for _, name := range []string{"FP16", "BF16", "UINT8", "INT8", "fp32", ""} {
		if d, ok := FromOIPDataType(name); ok {
			t.Errorf("%q read as %s", name, d)
		}
	}
}
