package serving

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
	"github.com/x448/float16"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// TensorModel is a Model that runs any of its signatures on tensors of any
// shape and dtype: the path TF Serving's own models take (scalars, unknown
// ranks, several named inputs and outputs, signature_name). Its errors
// follow Model's: ErrInvalidInput for input it rejects.
type TensorModel interface {
	Model
	Run(ctx context.Context, signature string, inputs map[string]tensor.Tensor) (map[string]tensor.Tensor, error)
}

// jsonTensor is a tensor being read from JSON: its shape is fixed by the
// first element at each level, as TF Serving's json_tensor.cc does.
type jsonTensor struct {
	dtype tensor.DType
	shape []int64 // of one item (an instance, or the whole columnar value)
	// data points at the elements read so far (*[]float32 for Float32):
	// appending through the pointer stores no new slice header in the
	// interface, which would allocate once a value.
	data any
}

func newJSONTensor(dtype tensor.DType) (*jsonTensor, error) {
	data := dtype.MakeData(0)
	if data == nil {
		return nil, errkind.New(errkind.Unimplemented, "conversion of JSON values to type %s is not supported", dtype)
	}
	p := reflect.New(reflect.TypeOf(data))
	p.Elem().Set(reflect.ValueOf(data))
	return &jsonTensor{dtype: dtype, data: p.Interface()}, nil
}

// values returns the elements read, as Tensor.Data holds them.
func (t *jsonTensor) values() any { return reflect.ValueOf(t.data).Elem().Interface() }

// shapeOf returns the shape a JSON value's nesting implies, following the
// first element at each level.
func shapeOf(v *fastjson.Value) []int64 {
	var shape []int64
	for v.Type() == fastjson.TypeArray {
		a, _ := v.Array()
		shape = append(shape, int64(len(a)))
		if len(a) == 0 {
			break
		}
		v = a[0]
	}
	return shape
}

// add appends the elements of one item (an instance, or a columnar value)
// whose shape must equal want, checking every list's length.
func (t *jsonTensor) add(v *fastjson.Value, want []int64, level int) error {
	if level < len(want) {
		if v.Type() != fastjson.TypeArray {
			return badRequest("JSON Value: %s found at incorrect level: %d in the JSON DOM. Expected at level: %d", v, level+1, len(want)+1)
		}
		a, _ := v.Array()
		if int64(len(a)) != want[level] {
			return badRequest("Encountered list at unexpected size: %d at level: %d expected size: %d", len(a), level, want[level])
		}
		for _, e := range a {
			if err := t.add(e, want, level+1); err != nil {
				return err
			}
		}
		return nil
	}
	if v.Type() == fastjson.TypeArray {
		return badRequest("Encountered list at unexpected level: %d expected < %d", level, len(want)+1)
	}
	return t.scalar(v)
}

// scalar appends one element, converted to the tensor's dtype.
func (t *jsonTensor) scalar(v *fastjson.Value) error {
	mismatch := func() error {
		return badRequest("JSON Value: %s Type: %s is not of expected type: %s", v, jsonTypeName(v), t.dtype)
	}
	switch d := t.data.(type) {
	case *[]float32:
		if v.Type() != fastjson.TypeNumber {
			return mismatch()
		}
		*d = append(*d, float32(v.GetFloat64()))
	case *[]float64:
		if v.Type() != fastjson.TypeNumber {
			return mismatch()
		}
		*d = append(*d, v.GetFloat64())
	case *[]float16.Float16:
		if v.Type() != fastjson.TypeNumber {
			return mismatch()
		}
		*d = append(*d, float16.Fromfloat32(float32(v.GetFloat64())))
	case *[]int8:
		return appendInt(d, v, mismatch)
	case *[]int16:
		return appendInt(d, v, mismatch)
	case *[]int32:
		return appendInt(d, v, mismatch)
	case *[]int64:
		return appendInt(d, v, mismatch)
	case *[]uint8:
		return appendUint(d, v, mismatch)
	case *[]uint16:
		return appendUint(d, v, mismatch)
	case *[]uint32:
		return appendUint(d, v, mismatch)
	case *[]uint64:
		return appendUint(d, v, mismatch)
	case *[]bool:
		b, err := v.Bool()
		if err != nil {
			return mismatch()
		}
		*d = append(*d, b)
	case *[][]byte:
		if v.Type() == fastjson.TypeObject {
			o := v.GetObject()
			enc := o.Get("b64")
			if enc == nil || o.Len() != 1 || enc.Type() != fastjson.TypeString {
				return badRequest("JSON Value: %s not formatted correctly for base64 data", v)
			}
			raw, _ := enc.StringBytes()
			b, err := base64.StdEncoding.DecodeString(string(raw))
			if err != nil {
				return badRequest("Unable to base64 decode: %v", err)
			}
			*d = append(*d, b)
			return nil
		}
		s, err := v.StringBytes()
		if err != nil {
			return mismatch()
		}
		*d = append(*d, append([]byte(nil), s...))
	}
	return nil
}

// appendInt appends a JSON integer that fits T; unlike TF Serving, which
// wraps an INT8, INT16 or UINT8 value that does not, kerasgo refuses it.
func appendInt[T int8 | int16 | int32 | int64](d *[]T, v *fastjson.Value, mismatch func() error) error {
	n, err := v.Int64()
	if err != nil || int64(T(n)) != n {
		return mismatch()
	}
	*d = append(*d, T(n))
	return nil
}

// appendUint appends a JSON integer that fits T.
func appendUint[T uint8 | uint16 | uint32 | uint64](d *[]T, v *fastjson.Value, mismatch func() error) error {
	n, err := v.Uint64()
	if err != nil || uint64(T(n)) != n {
		return mismatch()
	}
	*d = append(*d, T(n))
	return nil
}

func jsonTypeName(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		return "String"
	case fastjson.TypeNumber:
		return "Number"
	case fastjson.TypeObject:
		return "Object"
	case fastjson.TypeArray:
		return "Array"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "Bool"
	}
	return "Null"
}

func isB64(v *fastjson.Value) bool {
	if v.Type() != fastjson.TypeObject {
		return false
	}
	o := v.GetObject()
	return o.Len() == 1 && o.Get("b64") != nil
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func formatShape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// decodeTensors reads a predict body's "instances" (row format) or "inputs"
// (columnar) into the signature's input tensors by TF Serving's rules: the
// shape comes from the JSON nesting (a row-format tensor gets the number of
// instances in front), the dtype from the signature.
func decodeTensors(raw *fastjson.Value, sig tensor.Signature, columnar bool) (map[string]tensor.Tensor, error) {
	names := sortedNames(sig.Inputs)
	out := map[string]tensor.Tensor{}
	if columnar {
		if raw.Type() == fastjson.TypeObject && !isB64(raw) {
			obj := raw.GetObject()
			for _, name := range names {
				v := obj.Get(name)
				if v == nil {
					return nil, badRequest("Missing named input: %s in 'inputs' object.", name)
				}
				t, err := columnTensor(v, sig.Inputs[name].DType)
				if err != nil {
					return nil, err
				}
				out[name] = t
			}
			return out, nil
		}
		if len(names) != 1 {
			return nil, badRequest("inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map")
		}
		t, err := columnTensor(raw, sig.Inputs[names[0]].DType)
		if err != nil {
			return nil, err
		}
		out[names[0]] = t
		return out, nil
	}
	items, err := raw.Array()
	if err != nil {
		return nil, badRequest("Expecting 'instances' to be an list/array")
	}
	if len(items) == 0 {
		return nil, badRequest("No values in 'instances' array")
	}
	objects := items[0].Type() == fastjson.TypeObject && !isB64(items[0])
	for i, item := range items {
		isObj := item.Type() == fastjson.TypeObject && !isB64(item)
		switch {
		case objects && !isObj:
			return nil, badRequest("Expecting object but got list at item %d of input list", i)
		case !objects && isObj:
			return nil, badRequest("Expecting value/list but got object at item %d of input list", i)
		}
	}
	if !objects && len(names) != 1 {
		return nil, badRequest("instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map")
	}
	tensors := map[string]*jsonTensor{}
	for _, name := range names {
		jt, err := newJSONTensor(sig.Inputs[name].DType)
		if err != nil {
			return nil, err
		}
		tensors[name] = jt
	}
	for i, item := range items {
		values := map[string]*fastjson.Value{names[0]: item}
		if objects {
			obj := item.GetObject()
			values = map[string]*fastjson.Value{}
			var bad string
			unknown := false
			obj.Visit(func(k []byte, v *fastjson.Value) {
				if _, ok := sig.Inputs[string(k)]; !ok && !unknown {
					bad, unknown = string(k), true
				}
				values[string(k)] = v
			})
			if unknown {
				return nil, badRequest("Failed to process element: %d of 'instances' list. JSON object: does not have named input: %s", i, bad)
			}
			if len(values) != len(names) {
				return nil, badRequest("Failed to process element: %d of 'instances' list. JSON object: keys must be equal to: %s", i, strings.Join(names, ","))
			}
		}
		for _, name := range names {
			v, jt := values[name], tensors[name]
			shape := shapeOf(v)
			switch {
			case i == 0:
				jt.shape = shape
			case len(shape) == len(jt.shape) && formatShape(shape) != formatShape(jt.shape):
				return nil, badRequest("Failed to process element: %d key: %s of 'instances' list. Error: Expecting tensor size: %d but got: %d", i, name, elements(jt.shape), elements(shape))
			case formatShape(shape) != formatShape(jt.shape):
				return nil, badRequest("Failed to process element: %d key: %s of 'instances' list. Error: Expecting shape %s but got: %s", i, name, formatShape(jt.shape), formatShape(shape))
			}
			if err := jt.add(v, jt.shape, 0); err != nil {
				return nil, badRequest("Failed to process element: %d key: %s of 'instances' list. Error: %v", i, name, err)
			}
		}
	}
	for name, jt := range tensors {
		out[name] = tensor.Tensor{DType: jt.dtype, Shape: append([]int64{int64(len(items))}, jt.shape...), Data: jt.values()}
	}
	return out, nil
}

// columnTensor reads one columnar value: the whole tensor, any rank.
func columnTensor(v *fastjson.Value, dtype tensor.DType) (tensor.Tensor, error) {
	jt, err := newJSONTensor(dtype)
	if err != nil {
		return tensor.Tensor{}, err
	}
	shape := shapeOf(v)
	if err := jt.add(v, shape, 0); err != nil {
		return tensor.Tensor{}, err
	}
	return tensor.Tensor{DType: dtype, Shape: shape, Data: jt.values()}, nil
}

// encodeTensors writes a predict response by TF Serving's rules: row format
// "predictions" as one entry per row of the outputs (the row itself for one
// output, an object of named rows for several), columnar "outputs" as the
// whole tensor (or an object of them).
func encodeTensors(dst []byte, outputs map[string]tensor.Tensor, columnar bool) ([]byte, error) {
	names := sortedNames(outputs)
	if columnar {
		dst = append(dst, `{"outputs":`...)
		if len(names) == 1 {
			dst = appendTensor(dst, outputs[names[0]], 0, 0)
		} else {
			dst = append(dst, '{')
			for i, name := range names {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = strconv.AppendQuote(dst, name)
				dst = append(dst, ':')
				dst = appendTensor(dst, outputs[name], 0, 0)
			}
			dst = append(dst, '}')
		}
		return append(dst, "}\n"...), nil
	}
	batch := int64(-1)
	for _, name := range names {
		t := outputs[name]
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("tensor.Tensor name: %s has no shape information ", name)
		}
		if batch >= 0 && t.Shape[0] != batch {
			return nil, fmt.Errorf("tensor.Tensor name: %s has inconsistent batch size: %d expecting: %d", name, t.Shape[0], batch)
		}
		batch = t.Shape[0]
	}
	dst = append(dst, `{"predictions":[`...)
	for row := int64(0); row < batch; row++ {
		if row > 0 {
			dst = append(dst, ',')
		}
		if len(names) == 1 {
			dst = appendRow(dst, outputs[names[0]], row)
			continue
		}
		dst = append(dst, '{')
		for i, name := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, name)
			dst = append(dst, ':')
			dst = appendRow(dst, outputs[name], row)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}\n"...), nil
}

// appendRow writes row r of t (dimension 0): a sub-tensor.
func appendRow(dst []byte, t tensor.Tensor, r int64) []byte {
	per := int64(1)
	for _, d := range t.Shape[1:] {
		per *= d
	}
	sub := tensor.Tensor{DType: t.DType, Shape: t.Shape[1:], Data: t.Data}
	return appendTensor(dst, sub, r*per, 0)
}

// appendTensor writes the elements of t from offset as nested lists.
func appendTensor(dst []byte, t tensor.Tensor, offset int64, level int) []byte {
	if level == len(t.Shape) {
		return appendElement(dst, t.Data, offset)
	}
	per := int64(1)
	for _, d := range t.Shape[level+1:] {
		per *= d
	}
	dst = append(dst, '[')
	for i := int64(0); i < t.Shape[level]; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTensor(dst, t, offset+i*per, level+1)
	}
	return append(dst, ']')
}

func appendElement(dst []byte, data any, i int64) []byte {
	switch d := data.(type) {
	case []float32:
		return AppendFloat(dst, float64(d[i]), 32)
	case []float64:
		return AppendFloat(dst, d[i], 64)
	case []float16.Float16:
		return AppendFloat(dst, float64(d[i].Float32()), 32)
	case []int8:
		return strconv.AppendInt(dst, int64(d[i]), 10)
	case []int16:
		return strconv.AppendInt(dst, int64(d[i]), 10)
	case []int32:
		return strconv.AppendInt(dst, int64(d[i]), 10)
	case []int64:
		return strconv.AppendInt(dst, d[i], 10)
	case []uint8:
		return strconv.AppendUint(dst, uint64(d[i]), 10)
	case []uint16:
		return strconv.AppendUint(dst, uint64(d[i]), 10)
	case []uint32:
		return strconv.AppendUint(dst, uint64(d[i]), 10)
	case []uint64:
		return strconv.AppendUint(dst, d[i], 10)
	case []bool:
		return strconv.AppendBool(dst, d[i])
	case [][]byte:
		return strconv.AppendQuote(dst, string(d[i]))
	}
	return append(dst, "null"...)
}

// AppendFloat writes v as TF Serving writes numbers: the shortest of 6, 9
// (float32) or 17 (float64) significant digits that reads back to v, with
// ".0" added to a whole number ("3.0", "9e+06"), and NaN and Infinity as bare
// words.
func AppendFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(v, -1):
		return append(dst, "-Infinity"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, v, 'g', 6, bits)
	if back, err := strconv.ParseFloat(string(dst[start:]), bits); err != nil || back != v {
		digits := 9
		if bits == 64 {
			digits = 17
		}
		dst = strconv.AppendFloat(dst[:start], v, 'g', digits, bits)
	}
	if !strings.ContainsAny(string(dst[start:]), ".e") {
		dst = append(dst, ".0"...)
	}
	return dst
}

// SignatureDefMap returns a model's signatures in TF Serving's JSON form (the
// SignatureDefMap proto as proto3 JSON: "DT_FLOAT", sizes as strings, "-1"
// for unknown dimensions, unknown_rank), as its metadata endpoint writes it.
func SignatureDefMap(sigs map[string]tensor.Signature) map[string]any {
	defs := map[string]any{}
	for key, s := range sigs {
		defs[key] = map[string]any{
			"inputs": tensorInfos(s.Inputs), "outputs": tensorInfos(s.Outputs),
			"method_name": s.MethodName, "defaults": map[string]any{},
		}
	}
	return map[string]any{"signature_def": defs}
}

func tensorInfos(specs map[string]tensor.Spec) map[string]any {
	out := map[string]any{}
	for alias, t := range specs {
		dims := []any{}
		for _, d := range t.Shape {
			dims = append(dims, map[string]any{"size": strconv.FormatInt(d, 10), "name": ""})
		}
		dt := t.DType.TFName()
		out[alias] = map[string]any{
			"dtype":        dt,
			"tensor_shape": map[string]any{"dim": dims, "unknown_rank": t.Shape == nil},
			"name":         t.Name,
		}
	}
	return out
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
