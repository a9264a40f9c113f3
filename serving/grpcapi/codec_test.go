package grpcapi

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// TestCodec checks that Codec writes the bytes protobuf's own Marshal
// writes, and reads back what it wrote from the HTTP/2 frames a message
// arrives in, for messages below grpc-go's pooling threshold, between its
// default pool's tiers (a 40 KB row), and past the largest tier of Codec's
// pool.
func TestCodec(t *testing.T) {
	tests := map[string]int{ // features of one float32 row
		"below the pooling threshold": 16,
		"a 40 KB row":                 10_000,
		"past the largest tier":       5_000_000,
	}
	codec := NewCodec()
	for name, features := range tests {
		t.Run(name, func(t *testing.T) {
			content := make([]byte, 0, 4*features)
			for i := range features {
				content = binary.LittleEndian.AppendUint32(content, math.Float32bits(float32(i)/7))
			}
			req := &tfservingpb.PredictRequest{
				ModelSpec: &tfservingpb.ModelSpec{Name: "m", SignatureName: "serving_default"},
				Inputs:    map[string]*tensorpb.TensorProto{"features": {Dtype: 1, TensorContent: content}},
			}
			want, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // buffers come back from the pool, dirty
				data, err := codec.Marshal(req)
				if err != nil {
					t.Fatal(err)
				}
				got := data.Materialize()
				data.Free()
				if string(got) != string(want) {
					t.Fatalf("Marshal wrote %d bytes unlike proto.Marshal's %d", len(got), len(want))
				}
				var frames mem.BufferSlice // 16 KiB a frame, as gRPC's transport reads them
				for rest := got; len(rest) > 0; {
					n := min(len(rest), 16<<10)
					frames = append(frames, mem.SliceBuffer(rest[:n]))
					rest = rest[n:]
				}
				back := &tfservingpb.PredictRequest{}
				if err := codec.Unmarshal(frames, back); err != nil {
					t.Fatal(err)
				}
				// The buffer Unmarshal read from is back in the pool: the
				// next Get of its size returns it, and what it holds must
				// not show through the message.
				junk := codec.pool.Get(len(got))
				for i := range *junk {
					(*junk)[i] = 0xff
				}
				codec.pool.Put(junk)
				if !proto.Equal(back, req) {
					t.Fatalf("Unmarshal read back a different message")
				}
			}
		})
	}
}

// TestCodecRefusesNonMessages checks that values other than protobuf
// messages get grpc-go's own codec's errors.
func TestCodecRefusesNonMessages(t *testing.T) {
	codec := NewCodec()
	if _, err := codec.Marshal("not a message"); err == nil || !strings.Contains(err.Error(), "string") {
		t.Errorf("Marshal: got %v, want an error naming the type", err)
	}
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{1})}, new(int)); err == nil || !strings.Contains(err.Error(), "int") {
		t.Errorf("Unmarshal: got %v, want an error naming the type", err)
	}
	if codec.Name() != "proto" {
		t.Errorf("Name %q, want gRPC's default content subtype proto", codec.Name())
	}
}
