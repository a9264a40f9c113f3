package serving

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// This file is the Server's Go API below the REST handler: what another
// front end (serving/grpcapi, TF Serving's gRPC API) needs to share the
// models, versions, labels, batcher, memory bound and metrics with it.

// ErrUnknownSignature matches a request naming a signature the model does
// not have. TF Serving's gRPC Predict answers it FAILED_PRECONDITION.
var ErrUnknownSignature = errkind.Sentinel(errkind.FailedPrecondition, "unknown signature")

// ModelVersion is one served version of a model, held by a request: it
// stays loaded until Release, even when a newer version replaces it.
type ModelVersion struct {
	name    string
	v       *version
	release func()
	log     *modelLog // the model's request log; nil when it logs nothing
}

// Acquire returns the version of a model a request asks for: number 0 and
// no label is the latest; a label is resolved through the model's labels.
// Unknown models and versions match ErrUnknownModel and ErrUnknownVersion.
func (srv *Server) Acquire(name string, number int64, label string) (*ModelVersion, error) {
	s, err := srv.servable(name, number)
	if err != nil {
		return nil, err
	}
	v, release, err := s.acquire(number, label)
	if err != nil {
		return nil, err
	}
	return &ModelVersion{name: name, v: v, release: release, log: s.requestLog()}, nil
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
func (mv *ModelVersion) Predict(ctx context.Context, signature string, inputs map[string]tensor.Tensor) (map[string]tensor.Tensor, error) {
	spec := mv.v.spec
	if signature == "" {
		signature = spec.Signature
	}
	sig, ok := spec.Signatures[signature]
	if !ok && signature != spec.Signature {
		return nil, fmt.Errorf("%w: %w", ErrUnknownSignature, badRequest("Serving signature key %q not found.", signature))
	}
	tm, isTensorModel := mv.v.model.(TensorModel)
	// A Model that is not a TensorModel takes rows whatever its Spec's
	// Input says, as the REST handler feeds it.
	if signature == spec.Signature && (spec.Input != InputTensors || !isTensorModel) {
		if y, ok, err := mv.predictRows(ctx, inputs); ok {
			if err != nil {
				return nil, err
			}
			t := tensor.Tensor{DType: tensor.Float32, Shape: []int64{int64(y.Rows), int64(y.Cols)}, Data: y.Data}
			if spec.ScalarOutput && y.Cols == 1 {
				t.Shape = t.Shape[:1]
			}
			return map[string]tensor.Tensor{spec.OutputKey: t}, nil
		}
	}
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
func (mv *ModelVersion) predictRows(ctx context.Context, inputs map[string]tensor.Tensor) (y dense.Matrix, ok bool, err error) {
	spec := mv.v.spec
	t, found := inputs[spec.InputKey]
	if !found || len(inputs) != 1 {
		return y, false, nil
	}
	switch {
	case t.DType == tensor.Float32 && len(t.Shape) == 2 && spec.Input != InputText:
		if spec.Input == InputMatrix && (t.Shape[1] != int64(spec.InputDim) || t.Shape[0] == 0) {
			return y, false, nil // not the declared rows: TF Serving's tensors
		}
		if spec.InputDim >= 0 && t.Shape[1] != int64(spec.InputDim) {
			return y, true, badRequest("input %q has %d features per instance, the model takes %d", spec.InputKey, t.Shape[1], spec.InputDim)
		}
		x := dense.Matrix{Rows: int(t.Shape[0]), Cols: int(t.Shape[1]), Data: t.Data.([]float32)}
		if x.Rows == 0 {
			return dense.New(0, spec.outputWidth()), true, nil
		}
		y, err = mv.v.batcher.Predict(ctx, x)
		if spec.Input == InputMatrix && errkind.Of(err) == errkind.InvalidInput {
			return y, false, nil // rows the model refuses (non-finite): TF Serving passes them on
		}
		return y, true, err
	case t.DType == tensor.String && len(t.Shape) == 1 && spec.Input.texts():
		text, isText := mv.v.model.(TextModel)
		if !isText {
			return y, false, nil
		}
		raw := t.Data.([][]byte)
		texts := make([]string, len(raw))
		for i, b := range raw {
			texts[i] = string(b)
		}
		y, err = mv.v.predictText(ctx, text, texts)
		return y, true, err
	}
	return y, false, nil
}

// checkInputNames answers a request whose inputs are not the signature's
// with TF Serving's and TensorFlow's texts, before the model sees it.
func checkInputNames(sig tensor.Signature, inputs map[string]tensor.Tensor) error {
	if len(inputs) != len(sig.Inputs) {
		var extra, missing []string
		for name := range inputs {
			if _, ok := sig.Inputs[name]; !ok {
				extra = append(extra, name)
			}
		}
		for name := range sig.Inputs {
			if _, ok := inputs[name]; !ok {
				missing = append(missing, name)
			}
		}
		slices.Sort(extra)
		slices.Sort(missing)
		return badRequest("input size does not match signature: %d!=%d len({%s}) != len({%s}). Sent extra: {%s}. Missing but required: {%s}.",
			len(inputs), len(sig.Inputs), joinNames(inputs), joinNames(sig.Inputs), strings.Join(extra, ","), strings.Join(missing, ","))
	}
	for _, name := range sortedNames(sig.Inputs) {
		if _, ok := inputs[name]; !ok {
			return badRequest("Signature input alias: %s(feed name: %s) not found in request and no default value provided.", name, sig.Inputs[name].Name)
		}
	}
	return nil
}

func joinNames[V any](m map[string]V) string { return strings.Join(sortedNames(m), ",") }

// Method names of TF Serving's classification and regression signatures.
const (
	MethodClassify = methodClassify
	MethodRegress  = methodRegress
)

// RunExamples runs a classification or regression signature (method is
// MethodClassify or MethodRegress; signature "" is "serving_default") on
// serialized tf.Examples, with TF Serving's checks and texts: the signature
// exists, has one input, named "inputs", and the method's outputs. As in TF
// Serving by default, the signature's method name is not checked. Its
// errors are invalid input.
func (mv *ModelVersion) RunExamples(ctx context.Context, method, signature string, examples [][]byte) (map[string]tensor.Tensor, error) {
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
	// TF Serving's PreProcessClassification and PreProcessRegression, with
	// the method name check off (its default).
	kind := "regression"
	if method == methodClassify {
		kind = "classification"
	}
	switch n := len(sig.Outputs); {
	case len(sig.Inputs) != 1:
		return nil, badRequest("Expected one input Tensor.")
	case method == methodClassify && n != 1 && n != 2:
		return nil, badRequest("Expected one or two output Tensors, found %d", n)
	case method == methodRegress && n != 1:
		return nil, badRequest("Expected one output Tensor.")
	}
	if _, ok := sig.Inputs["inputs"]; !ok {
		return nil, badRequest("No %s inputs found in SignatureDef: %s", kind, signature)
	}
	_, classes := sig.Outputs["classes"]
	_, scores := sig.Outputs["scores"]
	_, outputs := sig.Outputs["outputs"]
	switch {
	case method == methodClassify && !classes && !scores:
		return nil, badRequest("Expected classification signature outputs to contain classes or scores: %s", signature)
	case method == methodRegress && !outputs:
		return nil, badRequest("No regression outputs found in SignatureDef: %s", signature)
	}
	in := tensor.Tensor{DType: tensor.String, Shape: []int64{int64(len(examples))}, Data: examples}
	return tm.Run(ctx, signature, map[string]tensor.Tensor{"inputs": in})
}

// Class is one class of an example's classification: its label (empty
// when the signature gives no classes) and score (0 when it gives none).
type Class struct {
	Label string
	Score float32
}

// Classifications reads a classification signature's outputs for n
// examples: "classes" (strings) and "scores" (float32), either of which may
// be missing, each [n] or [n, k].
func Classifications(outputs map[string]tensor.Tensor, n int64) ([][]Class, error) {
	scores, hasScores := outputs["scores"]
	classes, hasClasses := outputs["classes"]
	if !hasScores && !hasClasses {
		return nil, errors.New("the classification signature gives neither classes nor scores")
	}
	ref := scores
	if !hasScores {
		ref = classes
	}
	k := int64(1)
	if len(ref.Shape) == 2 {
		k = ref.Shape[1]
	}
	scoreData, _ := scores.Data.([]float32)
	classData, _ := classes.Data.([][]byte)
	if (hasScores && int64(len(scoreData)) != n*k) || (hasClasses && int64(len(classData)) != n*k) {
		return nil, fmt.Errorf("the classification signature's outputs do not hold %d × %d float32 scores and string classes", n, k)
	}
	out := make([][]Class, n)
	for i := range n {
		out[i] = make([]Class, k)
		for j := range k {
			if hasClasses {
				out[i][j].Label = string(classData[i*k+j])
			}
			if hasScores {
				out[i][j].Score = scoreData[i*k+j]
			}
		}
	}
	return out, nil
}

// Regressions reads a regression signature's "outputs" for n examples: one
// float32 each ([n] or [n, 1]).
func Regressions(outputs map[string]tensor.Tensor, n int64) ([]float32, error) {
	values, ok := outputs["outputs"].Data.([]float32)
	if !ok || int64(len(values)) != n {
		return nil, errors.New("the regression signature gives no float32 output per example")
	}
	return values, nil
}

// HasSignature says whether the version has the signature.
func (mv *ModelVersion) HasSignature(name string) bool {
	_, ok := mv.v.spec.Signatures[name]
	return ok
}

// Versions lists the loaded version numbers of a model, or only the one a
// request names by number, as TF Serving's GetModelStatus does (which
// ignores a label and lists every version).
func (srv *Server) Versions(name string, number int64) ([]int64, error) {
	s, err := srv.servable(name, number)
	if err != nil {
		return nil, notFoundError{msg: "Could not find any versions of model " + name, kind: ErrUnknownModel}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if number != 0 {
		if _, ok := s.versions[number]; !ok {
			return nil, notFoundError{msg: fmt.Sprintf("Could not find version %d of model %s", number, name), kind: ErrUnknownVersion}
		}
		return []int64{number}, nil
	}
	return slices.Sorted(maps.Keys(s.versions)), nil
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
// the requests in flight hold too much already, and with an error of
// errkind.TooLarge when this request alone would pass the bound.
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
