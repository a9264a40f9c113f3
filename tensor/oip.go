package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The Open Inference Protocol (KServe's "v2" protocol, also NVIDIA
// Triton's) names element types its own way and carries tensors either as
// JSON or in a raw layout: the elements flat, in row-major order,
// little-endian, a BOOL as one byte, and a BYTES element as its length (4
// bytes, little-endian) followed by its bytes. REST's binary tensor data
// extension and gRPC's raw_input_contents and raw_output_contents both use
// that layout.

// OIPDataType returns the Open Inference Protocol's datatype for d ("FP32"
// for Float32), or "" when d has none.
func (d DType) OIPDataType() string {
	switch d {
	case Float32:
		return "FP32"
	case Float64:
		return "FP64"
	case Int32:
		return "INT32"
	case Int64:
		return "INT64"
	case Bool:
		return "BOOL"
	case String:
		return "BYTES"
	}
	return ""
}

// FromOIPDataType returns the DType of an Open Inference Protocol datatype,
// or false for one kerasgo does not feed to a model (INT8, INT16, the
// unsigned types, FP16, BF16) or does not know.
func FromOIPDataType(name string) (DType, bool) {
	for _, d := range []DType{Float32, Float64, Int32, Int64, Bool, String} {
		if d.OIPDataType() == name {
			return d, true
		}
	}
	return "", false
}

// rawWidth is the bytes of one element of d in the raw layout, 0 for
// BYTES (variable) and for dtypes without one.
func rawWidth(d DType) int64 {
	switch d {
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	case Bool:
		return 1
	}
	return 0
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
	width := rawWidth(d)
	if d != String {
		if width == 0 {
			return Tensor{}, fmt.Errorf("no raw layout for dtype %s", d)
		}
		if int64(len(raw)) != n*width {
			return Tensor{}, fmt.Errorf("%d bytes of raw data for %d %s elements of shape %v, want %d", len(raw), n, d.OIPDataType(), shape, n*width)
		}
	}
	le := binary.LittleEndian
	switch d {
	case Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		t.Data = out
	case Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		t.Data = out
	case Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		t.Data = out
	case Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		t.Data = out
	case Bool:
		out := make([]bool, n)
		for i, b := range raw {
			if b > 1 {
				return Tensor{}, fmt.Errorf("BOOL element %d is byte %d, want 0 or 1", i, b)
			}
			out[i] = b == 1
		}
		t.Data = out
	case String:
		out := make([][]byte, 0, min(n, int64(len(raw)/4)))
		for i := int64(0); i < n; i++ {
			if len(raw) < 4 {
				return Tensor{}, fmt.Errorf("BYTES element %d of %d: raw data ends before its length", i, n)
			}
			size := le.Uint32(raw)
			if uint64(len(raw)-4) < uint64(size) {
				return Tensor{}, fmt.Errorf("BYTES element %d of %d: length %d, but %d bytes are left", i, n, size, len(raw)-4)
			}
			out = append(out, raw[4:4+size:4+size])
			raw = raw[4+size:]
		}
		if len(raw) != 0 {
			return Tensor{}, fmt.Errorf("%d bytes of raw data after the %d BYTES elements of shape %v", len(raw), n, shape)
		}
		t.Data = out
	}
	return t, nil
}

// AppendRaw appends t's elements to dst in the Open Inference Protocol's
// raw layout.
func AppendRaw(dst []byte, t Tensor) ([]byte, error) {
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for _, v := range d {
			dst = le.AppendUint32(dst, math.Float32bits(v))
		}
	case []float64:
		for _, v := range d {
			dst = le.AppendUint64(dst, math.Float64bits(v))
		}
	case []int32:
		for _, v := range d {
			dst = le.AppendUint32(dst, uint32(v))
		}
	case []int64:
		for _, v := range d {
			dst = le.AppendUint64(dst, uint64(v))
		}
	case []bool:
		for _, v := range d {
			b := byte(0)
			if v {
				b = 1
			}
			dst = append(dst, b)
		}
	case [][]byte:
		for _, v := range d {
			if uint64(len(v)) > math.MaxUint32 {
				return dst, fmt.Errorf("a BYTES element of %d bytes is longer than the raw layout's 4-byte length allows", len(v))
			}
			dst = le.AppendUint32(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	default:
		return dst, fmt.Errorf("no raw layout for %T elements", t.Data)
	}
	return dst, nil
}
