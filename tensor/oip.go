package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
)

// The Open Inference Protocol (KServe's "v2" protocol, also NVIDIA
// Triton's) names element types its own way and carries tensors either as
// JSON or in a raw layout: the elements flat, in row-major order,
// little-endian, a BOOL as one byte, and a BYTES element as its length (4
// bytes, little-endian) followed by its bytes. REST's binary tensor data
// extension and gRPC's raw_input_contents and raw_output_contents both use
// that layout, and TensorFlow's tensor_content is the same for every dtype
// but strings.

// OIPDataType returns the Open Inference Protocol's datatype for d ("FP32"
// for Float32), or "" when d has none.
func (d DType) OIPDataType() string { _, oip, _ := d.names(); return oip }

// FromOIPDataType returns the DType of an Open Inference Protocol datatype,
// or false for one kerasgo does not feed to a model (BF16) or does not
// know.
func FromOIPDataType(name string) (DType, bool) {
	for _, d := range known() {
		if d.OIPDataType() == name {
			return d, true
		}
	}
	return "", false
}

// DecodeRaw reads a tensor of dtype d and shape from the Open Inference
// Protocol's raw layout. raw must hold exactly the elements the shape
// implies.
func DecodeRaw(d DType, shape []int64, raw []byte) (Tensor, error) {
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return Tensor{}, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		n *= s
	}
	t := Tensor{DType: d, Shape: shape}
	if d == String {
		data, err := decodeBytes(raw, n, shape)
		t.Data = data
		return t, err
	}
	width := d.Width()
	if width == 0 {
		return Tensor{}, fmt.Errorf("no raw layout for dtype %s", d)
	}
	if int64(len(raw)) != n*width {
		return Tensor{}, fmt.Errorf("%d bytes of raw data for %d %s elements of shape %v, want %d", len(raw), n, d.OIPDataType(), shape, n*width)
	}
	if d == Bool {
		for i, b := range raw {
			if b > 1 {
				return Tensor{}, fmt.Errorf("BOOL element %d is byte %d, want 0 or 1", i, b)
			}
		}
	}
	t.Data = d.MakeData(int(n))
	if _, err := binary.Decode(raw, binary.LittleEndian, t.Data); err != nil {
		return Tensor{}, fmt.Errorf("%s elements: %w", d.OIPDataType(), err)
	}
	return t, nil
}

// decodeBytes reads n BYTES elements, each after its 4-byte length.
func decodeBytes(raw []byte, n int64, shape []int64) ([][]byte, error) {
	le := binary.LittleEndian
	out := make([][]byte, 0, min(n, int64(len(raw)/4)))
	for i := int64(0); i < n; i++ {
		if len(raw) < 4 {
			return nil, fmt.Errorf("BYTES element %d of %d: raw data ends before its length", i, n)
		}
		size := le.Uint32(raw)
		if uint64(len(raw)-4) < uint64(size) {
			return nil, fmt.Errorf("BYTES element %d of %d: length %d, but %d bytes are left", i, n, size, len(raw)-4)
		}
		out = append(out, raw[4:4+size:4+size])
		raw = raw[4+size:]
	}
	if len(raw) != 0 {
		return nil, fmt.Errorf("%d bytes of raw data after the %d BYTES elements of shape %v", len(raw), n, shape)
	}
	return out, nil
}

// AppendRaw appends t's elements to dst in the Open Inference Protocol's
// raw layout.
func AppendRaw(dst []byte, t Tensor) ([]byte, error) {
	le := binary.LittleEndian
	if d, ok := t.Data.([][]byte); ok {
		for _, v := range d {
			if uint64(len(v)) > math.MaxUint32 {
				return dst, fmt.Errorf("a BYTES element of %d bytes is longer than the raw layout's 4-byte length allows", len(v))
			}
			dst = le.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
		return dst, nil
	}
	if t.DType.Width() == 0 || reflect.TypeOf(t.Data) != reflect.TypeOf(t.DType.MakeData(0)) {
		return dst, fmt.Errorf("no raw layout for %T elements of dtype %q", t.Data, t.DType)
	}
	out, err := binary.Append(dst, le, t.Data)
	if err != nil {
		return dst, fmt.Errorf("no raw layout for %T elements: %w", t.Data, err)
	}
	return out, nil
}
