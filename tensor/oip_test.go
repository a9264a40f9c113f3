package tensor

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/x448/float16"
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
		{"INT8", Int8, []int64{2}, "\xff\x7f", []int8{-1, 127}, ""},
		{"INT16", Int16, []int64{1}, "\x00\x80", []int16{-32768}, ""},
		{"UINT8", Uint8, []int64{2}, "\xff\x00", []uint8{255, 0}, ""},
		{"UINT16", Uint16, []int64{1}, "\x34\x12", []uint16{0x1234}, ""},
		{"UINT32", Uint32, []int64{1}, "\xff\xff\xff\xff", []uint32{math.MaxUint32}, ""},
		{"UINT64", Uint64, []int64{1}, "\x01\x00\x00\x00\x00\x00\x00\x80", []uint64{1<<63 + 1}, ""},
		// IEEE 754 binary16: 0x3e00 is 1.5, 0xc000 is -2.
		{"FP16", Float16, []int64{2}, "\x00\x3e\x00\xc0", []float16.Float16{float16.Fromfloat32(1.5), float16.Fromfloat32(-2)}, ""},
		{"BOOL", Bool, []int64{3}, "\x01\x00\x01", []bool{true, false, true}, ""},
		{"BYTES", String, []int64{2}, "\x03\x00\x00\x00abc\x00\x00\x00\x00", [][]byte{[]byte("abc"), {}}, ""},
		{"FP16 odd length", Float16, []int64{1}, "\x00", nil, "1 bytes of raw data for 1 FP16 elements of shape [1], want 2"},
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

// TestNames checks each DType's names against the Open Inference
// Protocol's datatype table (inference_rest.md) and TensorFlow's
// types.proto, both ways.
func TestNames(t *testing.T) {
	cases := []struct {
		d       DType
		oip, tf string
		width   int64
	}{
		{Bool, "BOOL", "DT_BOOL", 1},
		{Uint8, "UINT8", "DT_UINT8", 1}, {Uint16, "UINT16", "DT_UINT16", 2},
		{Uint32, "UINT32", "DT_UINT32", 4}, {Uint64, "UINT64", "DT_UINT64", 8},
		{Int8, "INT8", "DT_INT8", 1}, {Int16, "INT16", "DT_INT16", 2},
		{Int32, "INT32", "DT_INT32", 4}, {Int64, "INT64", "DT_INT64", 8},
		{Float16, "FP16", "DT_HALF", 2}, {Float32, "FP32", "DT_FLOAT", 4}, {Float64, "FP64", "DT_DOUBLE", 8},
		{String, "BYTES", "DT_STRING", 0},
	}
	covered := map[DType]bool{}
	for _, c := range cases {
		covered[c.d] = true
	}
	for _, d := range known() {
		if !covered[d] {
			t.Errorf("%s has no case", d)
		}
	}
	for _, c := range cases {
		if c.d.OIPDataType() != c.oip || c.d.TFName() != c.tf || c.d.Width() != c.width {
			t.Errorf("%s: %q %q %d, want %q %q %d", c.d, c.d.OIPDataType(), c.d.TFName(), c.d.Width(), c.oip, c.tf, c.width)
		}
		if back, ok := FromOIPDataType(c.oip); !ok || back != c.d {
			t.Errorf("%q reads back as %q, %v", c.oip, back, ok)
		}
		if back := FromTFName(c.tf); back != c.d {
			t.Errorf("%q reads back as %q", c.tf, back)
		}
		if n := Len(c.d.MakeData(3)); n != 3 {
			t.Errorf("%s: MakeData(3) holds %d elements", c.d, n)
		}
	}
	if d := FromTFName("DT_BFLOAT16"); d != "bfloat16" || d.TFName() != "DT_BFLOAT16" {
		t.Errorf("DT_BFLOAT16 reads as %q, back as %q", d, d.TFName())
	}
	for _, name := range []string{"BF16", "fp32", ""} {
		if d, ok := FromOIPDataType(name); ok {
			t.Errorf("%q read as %s", name, d)
		}
	}
}
