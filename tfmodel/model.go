package tfmodel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"github.com/kerasgo/kerasgo/tensor"
	"google.golang.org/protobuf/proto"
)

// DefaultPredictSignature is the signature Predict uses when the exporter's
// metadata names none.
const DefaultPredictSignature = "serving_default"

// Options configure Load. The zero value is not valid: start from DefaultOptions.
type Options struct {
	// Tags select the MetaGraph to load. Default: {"serve"}.
	Tags []string
	// BatchSize is the most rows Predict sends to TensorFlow in one session run;
	// larger inputs are split into chunks of this size. Default: 512.
	BatchSize int
	// IntraOpThreads and InterOpThreads size TensorFlow's thread pools;
	// 0 leaves TensorFlow's default (the number of cores).
	IntraOpThreads int
	InterOpThreads int
	// AllowNonFinite passes NaN and ±Inf inputs to the model unchecked (the
	// outputs are then usually NaN). By default such inputs are rejected with
	// an *InputError wrapping ErrNonFinite.
	AllowNonFinite bool
}

// DefaultOptions returns the options Load uses for a model unless told otherwise.
func DefaultOptions() Options {
	return Options{Tags: []string{"serve"}, BatchSize: 512}
}

func (o Options) validate() error {
	if len(o.Tags) == 0 {
		return errors.New("options: no tags")
	}
	if o.BatchSize <= 0 {
		return fmt.Errorf("options: batch size %d, want > 0", o.BatchSize)
	}
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return errors.New("options: negative thread count")
	}
	return nil
}

// Model is a SavedModel loaded into a TensorFlow session. It is safe for
// concurrent use; see the package documentation for the contract.
type Model struct {
	dir       string
	opts      Options
	metaGraph *corepb.MetaGraphDef
	meta      *Metadata
	sigs      map[string]tensor.Signature

	// mu guards session and graph: readers (predictions) hold it shared for
	// the whole session run, writers (training, saving, Close) exclusively.
	mu      sync.RWMutex
	session *tf.Session
	graph   *tf.Graph

	predict predictPlan
	half    halfMaker

	// cGarbage counts bytes of TensorFlow tensors this model made that only a
	// Go finalizer frees; see noteTensorBytes.
	cGarbage atomic.Int64
}

// cGarbageLimit is how many bytes of finalizer-freed tensor memory may pile
// up before the model forces a garbage collection. The Go bindings free
// tensors only in finalizers, and the Go collector paces itself by the Go
// heap, which does not see C memory: without this, RSS grows by up to several
// GC cycles' worth of input batches (20 MB each at 500×10,000) before any is
// freed.
const cGarbageLimit = 64 << 20

// noteTensorBytes records n bytes of tensors that are now garbage, and runs
// the collector (which queues their finalizers) once cGarbageLimit is reached.
func (m *Model) noteTensorBytes(n int) {
	if m.cGarbage.Add(int64(n)) >= cGarbageLimit {
		m.cGarbage.Store(0)
		runtime.GC()
	}
}

// predictPlan is the resolved feed and fetch of Predict, or why there is none.
type predictPlan struct {
	signature string
	input     string
	output    string
	text      bool // the input takes strings (PredictText)
	err       error
}

// Load reads the SavedModel in dir, restores its variables into a new
// TensorFlow session and reads its signatures and exporter metadata.
//
// The context is checked before TensorFlow starts loading; the load itself is
// not interruptible.
func Load(ctx context.Context, dir string, opts Options) (*Model, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("loading saved model %q: %w", dir, err)
	}
	opts.Tags = append([]string(nil), opts.Tags...)
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("loading saved model: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("loading saved model %q: not a directory: %w", dir, ErrNotSavedModel)
	}
	mg, err := readMetaGraph(dir, opts.Tags)
	if err != nil {
		return nil, fmt.Errorf("loading saved model: %w", err)
	}
	// TensorFlow loads a graph whose variables directory is gone and fails
	// only at the first run; catch that here.
	if mg.GetSaverDef().GetFilenameTensorName() != "" {
		if _, err := os.Stat(filepath.Join(dir, "variables", "variables.index")); err != nil {
			return nil, fmt.Errorf("loading saved model %q: variables/variables.index: %v: %w", dir, err, ErrCorrupt)
		}
	}
	meta, err := readMetadata(dir)
	if err != nil {
		return nil, fmt.Errorf("loading saved model %q: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loading saved model %q: %w", dir, err)
	}
	sessOpts, err := sessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("loading saved model %q: %w", dir, err)
	}
	var sm *tf.SavedModel
	withoutSIGPROF(func() { sm, err = tf.LoadSavedModel(dir, opts.Tags, sessOpts) })
	if err != nil {
		return nil, fmt.Errorf("loading saved model %q: %v: %w", dir, err, ErrCorrupt)
	}
	m := &Model{
		dir:       dir,
		opts:      opts,
		metaGraph: mg,
		meta:      meta,
		sigs:      withoutInitOp(signaturesFromMetaGraph(mg)),
		session:   sm.Session,
		graph:     sm.Graph,
	}
	m.predict = m.planPredict()
	return m, nil
}

func sessionOptions(o Options) (*tf.SessionOptions, error) {
	if o.IntraOpThreads == 0 && o.InterOpThreads == 0 {
		return nil, nil
	}
	cfg := &corepb.ConfigProto{
		IntraOpParallelismThreads: int32(o.IntraOpThreads),
		InterOpParallelismThreads: int32(o.InterOpThreads),
	}
	b, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding session config: %w", err)
	}
	return &tf.SessionOptions{Config: b}, nil
}

func (m *Model) planPredict() predictPlan {
	p := predictPlan{signature: DefaultPredictSignature}
	if m.meta != nil {
		if s := m.meta.Signatures[RolePredict]; s != "" {
			p.signature = s
		}
	}
	sig, ok := m.sigs[p.signature]
	if !ok {
		p.err = fmt.Errorf("signature %q: %w (have %s)", p.signature, ErrUnknownSignature, strings.Join(m.SignatureKeys(), ", "))
		return p
	}
	p.input, p.err = pickKey(sig.Inputs, m.metaKey(func(md *Metadata) string { return md.InputKey }), "input", p.signature)
	if p.err != nil {
		return p
	}
	p.output, p.err = pickKey(sig.Outputs, m.metaKey(func(md *Metadata) string { return md.OutputKey }), "output", p.signature)
	if p.err != nil {
		return p
	}
	if dt := sig.Inputs[p.input].DType; dt == tensor.String {
		p.text = true
		if n := len(sig.Inputs[p.input].Shape); n > 2 {
			p.err = fmt.Errorf("signature %q input %q is a rank-%d string tensor; PredictText feeds one string per row (use Run): %w", p.signature, p.input, n, ErrShape)
		}
	} else if dt != tensor.Float32 {
		p.err = fmt.Errorf("signature %q input %q is %s; Predict feeds float32 (use Run): %w", p.signature, p.input, dt, ErrUnsupportedDType)
	} else if dt := sig.Outputs[p.output].DType; dt != tensor.Float32 {
		p.err = fmt.Errorf("signature %q output %q is %s; Predict reads float32 (use Run): %w", p.signature, p.output, dt, ErrUnsupportedDType)
	}
	return p
}

func (m *Model) metaKey(f func(*Metadata) string) string {
	if m.meta == nil {
		return ""
	}
	return f(m.meta)
}

// pickKey chooses the named key, or the only key when none is named.
func pickKey(specs map[string]tensor.Spec, named, what, sig string) (string, error) {
	if named != "" {
		if _, ok := specs[named]; !ok {
			return "", fmt.Errorf("signature %q has no %s %q: %w", sig, what, named, ErrUnknownSignature)
		}
		return named, nil
	}
	if len(specs) != 1 {
		return "", fmt.Errorf("signature %q has %d %ss (%s); Predict needs exactly one (use Run): %w",
			sig, len(specs), what, strings.Join(slices.Sorted(maps.Keys(specs)), ", "), ErrShape)
	}
	for k := range specs {
		return k, nil
	}
	panic("unreachable")
}

// Dir returns the directory the model was loaded from.
func (m *Model) Dir() string { return m.dir }

// Metadata returns a copy of the exporter's metadata, or nil for a model
// kerasgo's exporter did not make.
func (m *Model) Metadata() *Metadata { return m.meta.clone() }

// HasRole reports whether the exporter's metadata names a signature for r
// and the SavedModel has that signature.
func (m *Model) HasRole(r Role) bool {
	_, ok := m.roleSignature(r)
	return ok
}

// roleSignature returns the signature the metadata names for r, if the
// model has it.
func (m *Model) roleSignature(r Role) (tensor.Signature, bool) {
	if m.meta == nil || m.meta.Signatures[r] == "" {
		return tensor.Signature{}, false
	}
	sig, ok := m.sigs[m.meta.Signatures[r]]
	return sig, ok
}

// VectorizerPath returns the file of the text vectorizer the exporter stored
// with the model, or "" when it has none.
func (m *Model) VectorizerPath() string {
	if m.meta == nil || m.meta.Vectorizer == "" {
		return ""
	}
	return filepath.Join(m.dir, "assets", filepath.Base(m.meta.Vectorizer))
}

// TokenizerPath returns the file of the legacy Keras Tokenizer the exporter
// stored with the model, or "" when it has none.
func (m *Model) TokenizerPath() string {
	if m.meta == nil || m.meta.Tokenizer == "" {
		return ""
	}
	return filepath.Join(m.dir, "assets", filepath.Base(m.meta.Tokenizer))
}

// Signatures returns a copy of the model's signatures by key, without the
// internal __saved_model_init_op.
func (m *Model) Signatures() map[string]tensor.Signature {
	out := make(map[string]tensor.Signature, len(m.sigs))
	for k, s := range m.sigs {
		out[k] = s.Clone()
	}
	return out
}

// SignatureDefs returns every entry of the MetaGraph's signature_def map,
// the internal __saved_model_init_op included, as TF Serving's metadata
// lists them. Only the entries Signatures returns can be run.
func (m *Model) SignatureDefs() map[string]tensor.Signature {
	return signaturesFromMetaGraph(m.metaGraph)
}

// SignatureKeys returns the signature keys in sorted order.
func (m *Model) SignatureKeys() []string {
	return slices.Sorted(maps.Keys(m.sigs))
}

// Tags returns the tags of the loaded MetaGraph.
func (m *Model) Tags() []string { return append([]string(nil), m.opts.Tags...) }

// TensorFlowVersion returns the TensorFlow version recorded in the MetaGraph
// by whatever wrote the SavedModel.
func (m *Model) TensorFlowVersion() string {
	return m.metaGraph.GetMetaInfoDef().GetTensorflowVersion()
}

// InputDim returns the number of features Predict expects per row, or -1
// when the signature leaves it unknown.
func (m *Model) InputDim() int {
	if m.predict.err != nil {
		return -1
	}
	return lastDim(m.sigs[m.predict.signature].Inputs[m.predict.input])
}

// OutputDim returns the number of values Predict returns per row, or -1
// when the signature leaves it unknown.
func (m *Model) OutputDim() int {
	if m.predict.err != nil {
		return -1
	}
	return lastDim(m.sigs[m.predict.signature].Outputs[m.predict.output])
}

func lastDim(s tensor.Spec) int {
	if len(s.Shape) == 0 {
		return -1
	}
	return int(s.Shape[len(s.Shape)-1])
}

// Close frees the TensorFlow session. It waits for in-flight calls to
// return, is idempotent and safe to call from several goroutines.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.session == nil {
		return nil
	}
	err := errors.Join(m.session.Close(), m.half.close())
	m.session = nil
	m.graph = nil
	if err != nil {
		return fmt.Errorf("closing model %q: %w", m.dir, err)
	}
	return nil
}

// acquire takes the model shared (predictions, evaluation) or exclusively
// (anything that changes or saves the weights), then checks that it is open
// and that ctx is live. On success the caller must call the returned release.
func (m *Model) acquire(ctx context.Context, exclusive bool) (release func(), err error) {
	if exclusive {
		m.mu.Lock()
		release = m.mu.Unlock
	} else {
		m.mu.RLock()
		release = m.mu.RUnlock
	}
	if m.session == nil {
		release()
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// output resolves a signature tensor name ("op:index") in the graph.
// The caller holds m.mu.
func (m *Model) output(tensor string) (tf.Output, error) {
	name, idx := tensor, 0
	if i := strings.LastIndexByte(tensor, ':'); i >= 0 {
		n, err := strconv.Atoi(tensor[i+1:])
		if err != nil {
			return tf.Output{}, fmt.Errorf("tensor name %q: %w", tensor, ErrCorrupt)
		}
		name, idx = tensor[:i], n
	}
	op := m.graph.Operation(name)
	if op == nil {
		return tf.Output{}, fmt.Errorf("graph has no operation %q: %w", name, ErrCorrupt)
	}
	if idx >= op.NumOutputs() {
		return tf.Output{}, fmt.Errorf("operation %q has no output %d: %w", name, idx, ErrCorrupt)
	}
	return op.Output(idx), nil
}
