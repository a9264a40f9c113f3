package serving

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/kerasgo/kerasgo/dense"
)

// This file is the Server's Go API below the REST handler: what another
// front end (serving/grpcapi, TF Serving's gRPC API) needs to share the
// models, versions, labels, batcher, memory bound and metrics with it.

// ErrUnknownSignature matches a request naming a signature the model does
// not have. TF Serving's gRPC Predict answers it FAILED_PRECONDITION.
var ErrUnknownSignature = errors.New("unknown signature")

// HTTPStatus is the status TF Serving's REST API gives err: 400 for invalid
// input, 404 for an unknown model or version, 413 for a request that can
// never fit the memory bound, 503 when overloaded, 504 past the deadline,
// 500 for the rest.
func HTTPStatus(err error) int { return statusOf(err) }

// InvalidInput returns an error for input a client got wrong: 400 in REST,
// INVALID_ARGUMENT in gRPC.
func InvalidInput(format string, args ...any) error { return badRequest(format, args...) }

// ModelVersion is one served version of a model, held by a request: it
// stays loaded until Release, even when a newer version replaces it.
type ModelVersion struct {
	srv     *Server
	name    string
	v       *version
	release func()
}

// Acquire returns the version of a model a request asks for: number 0 and
// no label is the latest; a label is resolved through the model's labels.
// Unknown models and versions match ErrUnknownModel and ErrUnknownVersion.
func (srv *Server) Acquire(name string, number int64, label string) (*ModelVersion, error) {
	s, ok := srv.models[name]
	if !ok {
		request := fmt.Sprintf("Latest(%s)", name)
		if number != 0 {
			request = fmt.Sprintf("Specific(%s, %d)", name, number)
		}
		return nil, notFoundError{msg: "Servable not found for request: " + request, kind: ErrUnknownModel}
	}
	v, release, err := s.acquire(number, label)
	if err != nil {
		return nil, err
	}
	return &ModelVersion{srv: srv, name: name, v: v, release: release}, nil
}

// Release lets the version unload once no other request holds it.
func (mv *ModelVersion) Release() { mv.release() }

// Name is the model's name.
func (mv *ModelVersion) Name() string { return mv.name }

// Number is the version number.
func (mv *ModelVersion) Number() int64 { return mv.v.number }

// Spec describes the version's signatures.
func (mv *ModelVersion) Spec() Spec { return mv.v.spec }

// Predict runs a signature ("" for the prediction signature) on named
// input tensors, as TF Serving's Predict does. Float32 rows for the
// prediction signature of a rows model go through the batcher; strings for
// a text model go to its text path; any signature of a TensorModel runs as
// given. An unknown signature matches ErrUnknownSignature. The caller
// bounds the request's deadline.
func (mv *ModelVersion) Predict(ctx context.Context, signature string, inputs map[string]Tensor) (map[string]Tensor, error) {
	spec := mv.v.spec
	if signature == "" {
		signature = spec.Signature
	}
	sig, ok := spec.Signatures[signature]
	if !ok && signature != spec.Signature {
		return nil, fmt.Errorf("%w: %w", ErrUnknownSignature, badRequest("Serving signature name: %q not found in signature def", signature))
	}
	if signature == spec.Signature && (spec.Rows || spec.TextInput || spec.Vectorizes) {
		if y, ok, err := mv.predictRows(ctx, inputs); ok {
			if err != nil {
				return nil, err
			}
			t := Tensor{DType: "float32", Shape: []int64{int64(y.Rows), int64(y.Cols)}, Data: y.Data}
			if spec.ScalarOutput && y.Cols == 1 {
				t.Shape = t.Shape[:1]
			}
			return map[string]Tensor{spec.OutputKey: t}, nil
		}
	}
	tm, isTensorModel := mv.v.model.(TensorModel)
	if !isTensorModel {
		return nil, badRequest("model input %q takes a float32 matrix of shape [n, %d] or texts", spec.InputKey, spec.InputDim)
	}
	if err := checkInputNames(sig, inputs); err != nil {
		return nil, err
	}
	return tm.Run(ctx, signature, inputs)
}

// predictRows runs inputs through the prediction signature's own path when
// they are what it takes: one float32 matrix (batched) or one list of
// texts. ok is false when they are not, for a TensorModel to take them.
func (mv *ModelVersion) predictRows(ctx context.Context, inputs map[string]Tensor) (y dense.Matrix, ok bool, err error) {
	spec := mv.v.spec
	t, found := inputs[spec.InputKey]
	if !found || len(inputs) != 1 {
		return y, false, nil
	}
	switch {
	case t.DType == "float32" && len(t.Shape) == 2 && !spec.TextInput:
		if spec.InputDim >= 0 && t.Shape[1] != int64(spec.InputDim) {
			return y, true, badRequest("input %q has %d features per instance, the model takes %d", spec.InputKey, t.Shape[1], spec.InputDim)
		}
		x := dense.Matrix{Rows: int(t.Shape[0]), Cols: int(t.Shape[1]), Data: t.Data.([]float32)}
		if x.Rows == 0 {
			return dense.New(0, spec.outputWidth()), true, nil
		}
		y, err = mv.v.batcher.Predict(ctx, x)
		return y, true, err
	case t.DType == "string" && len(t.Shape) == 1 && (spec.TextInput || spec.Vectorizes):
		text, isText := mv.v.model.(TextModel)
		if !isText {
			return y, false, nil
		}
		raw := t.Data.([][]byte)
		texts := make([]string, len(raw))
		for i, b := range raw {
			texts[i] = string(b)
		}
		y, err = text.PredictText(ctx, texts)
		return y, true, err
	}
	return y, false, nil
}

// checkInputNames answers a request whose inputs are not the signature's
// as TF Serving does, before the model sees it.
func checkInputNames(sig SignatureSpec, inputs map[string]Tensor) error {
	for name := range inputs {
		if _, ok := sig.Inputs[name]; !ok {
			return badRequest("input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", name, joinNames(sig.Inputs))
		}
	}
	if len(inputs) != len(sig.Inputs) {
		return badRequest("input size does not match signature: %d!=%d len({%s}) != len({%s})", len(inputs), len(sig.Inputs), joinNames(inputs), joinNames(sig.Inputs))
	}
	return nil
}

func joinNames[V any](m map[string]V) string {
	out := ""
	for i, n := range sortedNames(m) {
		if i > 0 {
			out += ","
		}
		out += n
	}
	return out
}

// Method names of TF Serving's classification and regression signatures.
const (
	MethodClassify = methodClassify
	MethodRegress  = methodRegress
)

// RunExamples runs a classification or regression signature (method is
// MethodClassify or MethodRegress; signature "" is "serving_default") on
// serialized tf.Examples, with TF Serving's checks: the signature exists,
// has that method and takes one input. Its errors are invalid input.
func (mv *ModelVersion) RunExamples(ctx context.Context, method, signature string, examples [][]byte) (map[string]Tensor, error) {
	tm, ok := mv.v.model.(TensorModel)
	if !ok {
		return nil, badRequest("this model runs only its prediction signature; use Predict")
	}
	if signature == "" {
		signature = "serving_default"
	}
	sig, ok := mv.v.spec.Signatures[signature]
	if !ok {
		return nil, badRequest("No signature was found with the name: %s", signature)
	}
	kind := "regression"
	if method == methodClassify {
		kind = "classification"
	}
	if sig.MethodName != method {
		return nil, badRequest("Expected %s signature method_name to be %s. Was: %s", kind, method, sig.MethodName)
	}
	if len(sig.Inputs) != 1 {
		return nil, badRequest("Expected one input Tensor.")
	}
	in := Tensor{DType: "string", Shape: []int64{int64(len(examples))}, Data: examples}
	return tm.Run(ctx, signature, map[string]Tensor{sortedNames(sig.Inputs)[0]: in})
}

// HasMethod says whether any signature has the method name.
func (mv *ModelVersion) HasMethod(method string) bool {
	return slices.ContainsFunc(slices.Collect(maps.Values(mv.v.spec.Signatures)), func(s SignatureSpec) bool { return s.MethodName == method })
}

// Versions lists the loaded version numbers of a model, or the one a
// request names by number or label, as TF Serving's GetModelStatus does.
func (srv *Server) Versions(name string, number int64, label string) ([]int64, error) {
	if number != 0 || label != "" {
		mv, err := srv.Acquire(name, number, label)
		if err != nil {
			return nil, err
		}
		mv.Release()
		return []int64{mv.Number()}, nil
	}
	s, ok := srv.models[name]
	if !ok {
		return nil, notFoundError{msg: "Could not find any versions of model " + name, kind: ErrUnknownModel}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.versions)), nil
}

// Ready says whether every configured model has a version loaded.
func (srv *Server) Ready() bool {
	for _, s := range srv.models {
		s.mu.RLock()
		n := len(s.versions)
		s.mu.RUnlock()
		if n == 0 {
			return false
		}
	}
	return true
}

// RequestTimeout is the deadline the server gives each request.
func (srv *Server) RequestTimeout() time.Duration { return srv.cfg.RequestTimeout }

// Reservation is one request's share of the memory bound
// (Config.MaxInflightBytes).
type Reservation struct{ r *reservation }

// Reserve starts a request's reservation with the fixed cost of any
// request. It fails as Grow does.
func (srv *Server) Reserve() (*Reservation, error) {
	res := &Reservation{r: srv.admission.reservation()}
	if err := res.Grow(requestOverhead); err != nil {
		return nil, err
	}
	return res, nil
}

// Grow adds n bytes to the reservation. It fails with ErrOverloaded when
// the requests in flight hold too much already, and with an error whose
// HTTPStatus is 413 when this request alone would pass the bound.
func (res *Reservation) Grow(n int64) error { return res.r.grow(n) }

// Release gives the reservation back.
func (res *Reservation) Release() { res.r.release() }

// Observe counts a request in the server's metrics (kerasgo_requests_total
// and kerasgo_request_duration_seconds): version is 0 when none was
// resolved, code the protocol's status ("200", "OK", "NOT_FOUND").
func (srv *Server) Observe(model string, version int64, api, code string, took time.Duration) {
	v := "unknown"
	if version != 0 {
		v = strconv.FormatInt(version, 10)
	}
	srv.metrics.requests.WithLabelValues(model, v, api, code).Inc()
	srv.metrics.latency.WithLabelValues(model, api).Observe(took.Seconds())
}
