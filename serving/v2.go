package serving

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// The Open Inference Protocol's REST API (KServe's "v2" protocol, which
// NVIDIA Triton, KServe, Seldon MLServer and OpenVINO Model Server speak),
// on the same handler as TF Serving's, sharing its models, versions,
// batcher, memory bound and metrics:
//
//	GET  /v2                                       server metadata
//	GET  /v2/health/live, /v2/health/ready         liveness, readiness
//	GET  /v2/models/{name}[/versions/{v}]          model metadata
//	GET  /v2/models/{name}[/versions/{v}]/ready    model readiness
//	POST /v2/models/{name}[/versions/{v}]/infer    inference
//
// Tensors travel as JSON or, with the binary tensor data extension that
// Triton's clients use by default, as raw bytes after the JSON
// (Inference-Header-Content-Length). Errors are {"error": "..."}.

// Platform is the Open Inference Protocol's name for the kind of model
// kerasgo serves.
const Platform = "tensorflow_savedmodel"

// binaryHeader is the binary tensor data extension's header: the length of
// the JSON part of a body whose tensors follow it as raw bytes.
const binaryHeader = "Inference-Header-Content-Length"

// ServerName is the name the Open Inference Protocol's server metadata
// gives.
const ServerName = "kerasgo"

// ServerVersion is the module version kerasgo was built as, "(devel)" for
// a build from a checkout.
func ServerVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// v2Route is a parsed /v2/models/... path.
type v2Route struct {
	name    string
	version int64  // 0: the latest
	tail    string // "", "ready" or "infer"
}

func parseV2Route(path string) (v2Route, error) {
	rest, _ := strings.CutPrefix(path, "/v2/models/")
	parts := strings.Split(rest, "/")
	var r v2Route
	if parts[0] == "" {
		return r, errMalformed
	}
	r.name, parts = parts[0], parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		n, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || n <= 0 {
			return r, badRequest("version %q is not a positive number", parts[1])
		}
		r.version, parts = n, parts[2:]
	}
	switch {
	case len(parts) == 0:
	case len(parts) == 1 && (parts[0] == "ready" || parts[0] == "infer"):
		r.tail = parts[0]
	default:
		return r, errMalformed
	}
	return r, nil
}

// serveV2 answers the Open Inference Protocol's REST API.
func (srv *Server) serveV2(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimSuffix(req.URL.Path, "/")
	get := req.Method == http.MethodGet || req.Method == http.MethodHead
	switch {
	case path == "/v2" && get:
		writeJSON(w, http.StatusOK, map[string]any{"name": ServerName, "version": ServerVersion(), "extensions": []string{"binary_tensor_data"}})
		return
	case path == "/v2/health/live" && get:
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
		return
	case path == "/v2/health/ready" && get:
		if name, ready := srv.Ready(); !ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": fmt.Sprintf("model %q has no version loaded", name)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
		return
	case !strings.HasPrefix(path, "/v2/models/"):
		srv.drain(w, req)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no such endpoint of the Open Inference Protocol: %s %s", req.Method, req.URL.Path)})
		return
	}
	start := time.Now()
	r, err := parseV2Route(path)
	api := "v2_" + r.tail
	if r.tail == "" {
		api = "v2_metadata"
	}
	versionLabel := "unknown"
	res := srv.admission.reservation()
	defer func() {
		res.release()
		code := http.StatusOK
		if errors.Is(err, errMalformed) {
			err = errkind.New(errkind.NotFound, "no such endpoint of the Open Inference Protocol: %s %s", req.Method, req.URL.Path)
		}
		if err != nil {
			code = statusOf(err)
			srv.drain(w, req)
			writeJSON(w, code, map[string]string{"error": err.Error()})
		}
		srv.metrics.requests.WithLabelValues(r.name, versionLabel, api, strconv.Itoa(code)).Inc()
		srv.metrics.latency.WithLabelValues(r.name, api).Observe(time.Since(start).Seconds())
	}()
	if err != nil {
		return
	}
	if (r.tail == "infer") != (req.Method == http.MethodPost) || (r.tail != "infer" && !get) {
		err = errMalformed
		return
	}
	if err = res.grow(requestOverhead); err != nil {
		return
	}
	mv, err := srv.Acquire(r.name, r.version, "")
	if err != nil {
		return
	}
	defer mv.Release()
	versionLabel = strconv.FormatInt(mv.Number(), 10)
	switch r.tail {
	case "ready":
		writeJSON(w, http.StatusOK, map[string]any{"name": r.name, "ready": true})
	case "":
		err = srv.v2Metadata(w, mv)
	case "infer":
		err = srv.v2Infer(w, req, mv, res)
	}
}

// TensorMetadata is one input or output of a model's prediction signature
// as the Open Inference Protocol describes it.
type TensorMetadata struct {
	Name string `json:"name"`
	// DataType is the protocol's name of its element type ("FP32").
	DataType string `json:"datatype"`
	// Shape has -1 for a dimension of any size ([-1] for an unknown rank).
	Shape []int64 `json:"shape"`
}

// IOMetadata returns the prediction signature's inputs and outputs, each
// sorted by name, for the Open Inference Protocol's model metadata.
func (mv *ModelVersion) IOMetadata() (inputs, outputs []TensorMetadata) {
	list := func(specs map[string]tensor.Spec) []TensorMetadata {
		out := []TensorMetadata{}
		for _, name := range sortedNames(specs) {
			s := specs[name]
			shape := s.Shape
			if shape == nil {
				shape = []int64{-1}
			}
			out = append(out, TensorMetadata{Name: name, DataType: s.DType.OIPDataType(), Shape: shape})
		}
		return out
	}
	spec := mv.Spec()
	sig := spec.Signatures[spec.Signature]
	return list(sig.Inputs), list(sig.Outputs)
}

// v2Metadata answers a model's metadata: its versions, and the prediction
// signature's inputs and outputs.
func (srv *Server) v2Metadata(w http.ResponseWriter, mv *ModelVersion) error {
	versions, err := srv.Versions(mv.Name(), 0)
	if err != nil {
		return err
	}
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = strconv.FormatInt(v, 10)
	}
	inputs, outputs := mv.IOMetadata()
	writeJSON(w, http.StatusOK, map[string]any{
		"name": mv.Name(), "versions": names, "platform": Platform, "inputs": inputs, "outputs": outputs,
	})
	return nil
}

// v2Infer answers an inference request on the model's prediction
// signature.
func (srv *Server) v2Infer(w http.ResponseWriter, req *http.Request, mv *ModelVersion, res *reservation) error {
	switch enc := strings.ToLower(req.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip", "deflate":
		// The binary extension's header counts the JSON before compression,
		// so the body is read whole, uncompressed, up to MaxBodyBytes.
		var r io.ReadCloser
		var err error
		if enc == "gzip" {
			r, err = gzip.NewReader(req.Body)
		} else {
			r, err = zlib.NewReader(req.Body)
		}
		if err != nil {
			return badRequest("reading the %s request body: %v", enc, err)
		}
		defer r.Close()
		req.Body, req.ContentLength = r, -1
	default:
		return errkind.New(errkind.Unimplemented, "Content-Encoding %q is not supported (gzip, deflate)", enc)
	}
	body, err := srv.readBody(req, res, 1)
	if err != nil {
		return err
	}
	jsonPart, binary := body, []byte(nil)
	if h := req.Header.Get(binaryHeader); h != "" {
		n, err := strconv.Atoi(h)
		switch {
		case err != nil || n < 0 || n > len(body):
			return badRequest("%s: %q is not a length within the %d-byte body", binaryHeader, h, len(body))
		case n == 0:
			return errkind.New(errkind.Unimplemented, "%s: 0 (a body of one input's raw bytes) is not supported; send the JSON header", binaryHeader)
		}
		jsonPart, binary = body[:n], body[n:]
	}
	doc, done, err := srv.parseJSON(jsonPart, res)
	if err != nil {
		return err
	}
	defer done()
	inputs, err := v2Inputs(doc, binary, res)
	if err != nil {
		return err
	}
	wantOutputs, binaryOutputs, err := v2RequestedOutputs(doc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(req.Context(), srv.cfg.RequestTimeout)
	defer cancel()
	outputs, err := mv.Predict(ctx, "", inputs)
	if err != nil {
		return err
	}
	if len(wantOutputs) == 0 {
		for _, name := range sortedNames(outputs) {
			wantOutputs = append(wantOutputs, v2Output{name: name, binary: binaryOutputs})
		}
	}
	var id []byte
	if v := doc.Get("id"); v != nil {
		if id, err = v.StringBytes(); err != nil {
			return badRequest("id: want a string, got %s", jsonTypeName(v))
		}
	}
	if mv.Logs() {
		logID := RequestID(string(id))
		w.Header().Set(RequestIDHeader, logID)
		restLog{mv: mv, id: logID}.predict(mv.Spec().Signature, func() map[string]tensor.Tensor { return inputs }, outputs)
	}
	out, blobs, err := encodeV2Response(mv, id, outputs, wantOutputs)
	if err != nil {
		return err
	}
	if err := res.grow(int64(len(out) + len(blobs))); err != nil {
		return err
	}
	if len(blobs) > 0 {
		w.Header().Set(binaryHeader, strconv.Itoa(len(out)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)+len(blobs)))
		if _, err := w.Write(out); err != nil {
			return nil // the client is gone; the status is sent
		}
		_, _ = w.Write(blobs)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
	return nil
}

// OIPInputHeader checks what the Open Inference Protocol says of an input
// before its data, for REST and gRPC alike: a name not among the inputs
// read so far (seen), a datatype kerasgo feeds, and a shape without a
// negative dimension. It returns the dtype and the number of elements the
// shape holds, or an error of errkind.InvalidInput.
func OIPInputHeader(seen map[string]tensor.Tensor, name, datatype string, shape []int64) (tensor.DType, int64, error) {
	if _, dup := seen[name]; dup {
		return "", 0, errkind.New(errkind.InvalidInput, "input %q is given twice", name)
	}
	dtype, ok := tensor.FromOIPDataType(datatype)
	if !ok {
		return "", 0, errkind.New(errkind.InvalidInput, "input %q: datatype %q is not one kerasgo feeds (BOOL, UINT8 to UINT64, INT8 to INT64, FP16, FP32, FP64, BYTES)", name, datatype)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return "", 0, errkind.New(errkind.InvalidInput, "input %q: shape %v has a negative dimension", name, shape)
		}
		if d > 0 && n > math.MaxInt64/d {
			return "", 0, errkind.New(errkind.InvalidInput, "input %q: shape %v holds more than %d elements", name, shape, int64(math.MaxInt64))
		}
		n *= d
	}
	return dtype, n, nil
}

// v2Inputs reads a request's input tensors: from their JSON "data" (nested
// or flat, in row-major order), or from the binary part when their
// parameters give a binary_data_size, in the order the inputs come.
func v2Inputs(doc *fastjson.Value, binary []byte, res *reservation) (map[string]tensor.Tensor, error) {
	list := doc.Get("inputs")
	if list == nil || list.Type() != fastjson.TypeArray || len(list.GetArray()) == 0 {
		return nil, badRequest("the request needs a non-empty list of inputs")
	}
	inputs := map[string]tensor.Tensor{}
	for i, in := range list.GetArray() {
		name := string(in.GetStringBytes("name"))
		if name == "" {
			return nil, badRequest("input %d has no name", i)
		}
		var shape []int64
		for _, d := range in.GetArray("shape") {
			n, err := d.Int64()
			if err != nil {
				return nil, badRequest("input %q: shape %s: want integers", name, in.Get("shape"))
			}
			shape = append(shape, n)
		}
		if in.Get("shape") == nil {
			return nil, badRequest("input %q has no shape", name)
		}
		dtype, n, err := OIPInputHeader(inputs, name, string(in.GetStringBytes("datatype")), shape)
		if err != nil {
			return nil, err
		}
		var t tensor.Tensor
		if size := in.Get("parameters", "binary_data_size"); size != nil {
			k, err := size.Int64()
			if err != nil || k < 0 || k > int64(len(binary)) {
				return nil, badRequest("input %q: binary_data_size %s, but %d bytes of binary data are left", name, size, len(binary))
			}
			if t, err = tensor.DecodeRaw(dtype, shape, binary[:k]); err != nil {
				return nil, badRequest("input %q: %v", name, err)
			}
			binary = binary[k:]
		} else {
			data := in.Get("data")
			if data == nil {
				return nil, badRequest("input %q has neither data nor a binary_data_size parameter", name)
			}
			jt, err := newJSONTensor(dtype)
			if err != nil {
				return nil, err
			}
			if err := jt.flat(data); err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			if got := int64(tensor.Len(jt.values())); got != n {
				return nil, badRequest("input %q: %d elements of data for shape %v, which holds %d", name, got, shape, n)
			}
			t = tensor.Tensor{DType: dtype, Shape: shape, Data: jt.values()}
		}
		if err := res.grow(n * 8); err != nil {
			return nil, err
		}
		inputs[name] = t
	}
	if len(binary) > 0 {
		return nil, badRequest("%d bytes of binary data that no input's binary_data_size claims", len(binary))
	}
	return inputs, nil
}

// flat appends the elements of a JSON value of any nesting, in order.
func (t *jsonTensor) flat(v *fastjson.Value) error {
	if v.Type() != fastjson.TypeArray {
		return t.scalar(v)
	}
	for _, e := range v.GetArray() {
		if err := t.flat(e); err != nil {
			return err
		}
	}
	return nil
}

// v2Output is one output a request asks for, and whether it wants it as
// binary data.
type v2Output struct {
	name   string
	binary bool
}

// v2RequestedOutputs reads the outputs a request names (none: all) and
// the request's binary_data_output, which outputs without their own
// binary_data parameter follow.
func v2RequestedOutputs(doc *fastjson.Value) ([]v2Output, bool, error) {
	all := false
	if v := doc.Get("parameters", "binary_data_output"); v != nil {
		b, err := v.Bool()
		if err != nil {
			return nil, false, badRequest("parameters.binary_data_output: want true or false, got %s", v)
		}
		all = b
	}
	var out []v2Output
	for i, o := range doc.GetArray("outputs") {
		name := string(o.GetStringBytes("name"))
		if name == "" {
			return nil, false, badRequest("output %d has no name", i)
		}
		binary := all
		if v := o.Get("parameters", "binary_data"); v != nil {
			b, err := v.Bool()
			if err != nil {
				return nil, false, badRequest("output %q: parameters.binary_data: want true or false, got %s", name, v)
			}
			binary = b
		}
		out = append(out, v2Output{name: name, binary: binary})
	}
	return out, all, nil
}

// encodeV2Response writes an inference response's JSON and, after it, the
// binary data of the outputs asked for as such.
func encodeV2Response(mv *ModelVersion, id []byte, outputs map[string]tensor.Tensor, want []v2Output) (js, blobs []byte, err error) {
	js = append(js, `{"model_name":`...)
	js = appendJSONString(js, mv.Name())
	js = append(js, `,"model_version":"`...)
	js = strconv.AppendInt(js, mv.Number(), 10)
	js = append(js, '"')
	if id != nil {
		js = append(js, `,"id":`...)
		js = appendJSONString(js, string(id))
	}
	js = append(js, `,"outputs":[`...)
	for i, o := range want {
		t, ok := outputs[o.name]
		if !ok {
			return nil, nil, badRequest("unexpected inference output %q for model %q (it has %s)", o.name, mv.Name(), joinNames(outputs))
		}
		if i > 0 {
			js = append(js, ',')
		}
		js = append(js, `{"name":`...)
		js = appendJSONString(js, o.name)
		js = append(js, `,"datatype":"`...)
		js = append(js, t.DType.OIPDataType()...)
		js = append(js, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				js = append(js, ',')
			}
			js = strconv.AppendInt(js, d, 10)
		}
		js = append(js, ']')
		if o.binary {
			before := len(blobs)
			if blobs, err = tensor.AppendRaw(blobs, t); err != nil {
				return nil, nil, err
			}
			js = append(js, `,"parameters":{"binary_data_size":`...)
			js = strconv.AppendInt(js, int64(len(blobs)-before), 10)
			js = append(js, "}}"...)
			continue
		}
		js = append(js, `,"data":[`...)
		for j := range int64(tensor.Len(t.Data)) {
			if j > 0 {
				js = append(js, ',')
			}
			if s, ok := t.Data.([][]byte); ok {
				js = appendJSONString(js, string(s[j]))
				continue
			}
			js = appendElement(js, t.Data, j)
		}
		js = append(js, "]}"...)
	}
	return append(js, "]}"...), blobs, nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}
