package tfmodel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/x448/float16"
)

// halfMaker makes float16 tensors, which the Go bindings cannot: they map
// every dtype they allocate to a Go element type, and Go has no float16.
// It feeds the IEEE 754 bits as a uint16 tensor to a one-op graph of its
// own, a Bitcast to DT_HALF, and returns what TensorFlow made. The graph and
// its session are built on first use, as few models take float16.
type halfMaker struct {
	once    sync.Once
	err     error
	session *tf.Session
	in, out tf.Output
}

func (h *halfMaker) build() {
	g := tf.NewGraph()
	in, err := g.AddOperation(tf.OpSpec{Type: "Placeholder", Name: "bits", Attrs: map[string]any{"dtype": tf.Uint16}})
	if err != nil {
		h.err = err
		return
	}
	cast, err := g.AddOperation(tf.OpSpec{Type: "Bitcast", Name: "half", Input: []tf.Input{in.Output(0)}, Attrs: map[string]any{"type": tf.Half}})
	if err != nil {
		h.err = err
		return
	}
	h.in, h.out = in.Output(0), cast.Output(0)
	h.session, h.err = tf.NewSession(g, nil)
}

// fromBits returns a DT_HALF tensor of the given shape holding v.
func (h *halfMaker) fromBits(v []float16.Float16, shape []int64) (*tf.Tensor, error) {
	h.once.Do(h.build)
	if h.err != nil {
		return nil, fmt.Errorf("float16 tensor: %v: %w", h.err, ErrUnsupportedDType)
	}
	var raw bytes.Buffer
	raw.Grow(2 * len(v))
	if err := binary.Write(&raw, binary.LittleEndian, v); err != nil {
		return nil, fmt.Errorf("float16 tensor: %w", err)
	}
	bits, err := tf.ReadTensor(tf.Uint16, append([]int64{}, shape...), &raw)
	if err != nil {
		return nil, fmt.Errorf("float16 tensor of shape %v: %v: %w", shape, err, ErrShape)
	}
	res, err := h.session.Run(map[tf.Output]*tf.Tensor{h.in: bits}, []tf.Output{h.out}, nil)
	if err != nil {
		return nil, fmt.Errorf("float16 tensor: %w", err)
	}
	return res[0], nil
}

// close closes the session, if one was built.
func (h *halfMaker) close() error {
	if h.session == nil {
		return nil
	}
	return h.session.Close()
}
