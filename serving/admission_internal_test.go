package serving

import (
	"bytes"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// requestBodies are predict bodies that make the decoders' memory per byte
// or per value largest: one-digit numbers, deep and shallow nesting.
var requestBodies = map[string]string{
	"rows of 2":         `{"instances": [` + strings.TrimSuffix(strings.Repeat("[0.25, 1], ", 50000), ", ") + `]}`,
	"one-digit numbers": `{"instances": [` + strings.TrimSuffix(strings.Repeat("[0,0,0,0],", 50000), ",") + `]}`,
	"one long row":      `{"instances": [[` + strings.TrimSuffix(strings.Repeat("0,", 200000), ",") + `]]}`,
	"bare numbers":      `{"instances": [` + strings.TrimSuffix(strings.Repeat("0,", 200000), ",") + `]}`,
	"nested rows":       `{"instances": [` + strings.TrimSuffix(strings.Repeat("[[0]],", 100000), ",") + `]}`,
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAdmissionCoversDecoding checks that what admission charges a request
// covers what reading its body allocates: everything allocated, not only
// what stays live, so the charge is an upper bound.
func TestAdmissionCoversDecoding(t *testing.T) {
	for name, body := range requestBodies {
		t.Run(name, func(t *testing.T) {
			b := []byte(body)
			// The rows path: the body is read into rowsPathFactor × its size.
			spec := Spec{InputKey: "x", InputDim: -1}
			if name == "bare numbers" {
				spec.InputDim = 1
			}
			if name != "nested rows" { // not rows of numbers

				got := allocated(func() {
					rb, err := decodeRowBody(b, spec)
					if err != nil || rb.err != nil {
						t.Fatal(err, rb.err)
					}
				})
				if limit := uint64(rowsPathFactor-1)*uint64(len(b)) + requestOverhead; got > limit {
					t.Errorf("streaming %d bytes allocated %d, more than the %d charged beyond the body", len(b), got, limit)
				}
			}
			// The tree path: parse and tensors, charged by value.
			values := bytes.Count(b, []byte{','}) + bytes.Count(b, []byte{'['}) + bytes.Count(b, []byte{'{'}) + 1
			sig := tensor.Signature{Inputs: map[string]tensor.Spec{"x": {DType: tensor.Float32}}}
			got := allocated(func() {
				var p fastjson.Parser
				doc, err := p.ParseBytes(b)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := decodeTensors(doc.Get("instances"), sig, false); err != nil {
					t.Fatal(err)
				}
			})
			if limit := uint64(len(b)) + uint64(values)*treeBytesPerValue; got > limit {
				t.Errorf("parsing %d bytes (%d values) allocated %d, more than the %d charged", len(b), values, got, limit)
			}
		})
	}
}

func TestReservation(t *testing.T) {
	a := &admission{limit: 100, gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})}
	r1, r2 := a.reservation(), a.reservation()
	if err := r1.grow(60); err != nil {
		t.Fatal(err)
	}
	if err := r2.grow(50); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("60 + 50 of 100: %v, want ErrOverloaded", err)
	}
	if err := r2.grow(101); errkind.Of(err).HTTPStatus() != http.StatusRequestEntityTooLarge {
		t.Fatalf("101 of 100: %v, want a 413", err)
	}
	if err := r2.grow(40); err != nil {
		t.Fatal(err)
	}
	r1.release()
	r1.release() // a second release gives nothing back twice
	if err := r2.grow(60); err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2.release()
	if a.used != 0 {
		t.Fatalf("%d bytes still held after every release", a.used)
	}
}
