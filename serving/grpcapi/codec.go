package grpcapi

import (
	"fmt"

	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Codec is gRPC's protobuf codec with buffers sized to the messages a model
// server gets: a row of 10,000 float32 features is a 40 KB message. Give it
// to a server with grpc.ForceServerCodecV2(grpcapi.NewCodec()); kerasgo
// serve does.
//
// Why not grpc-go's own codec: it copies a message that arrived in several
// HTTP/2 frames into a buffer from grpc-go's default pool, whose tiers jump
// from 32 KB to 1 MB and which clears the whole buffer on every Get. Each
// 40 KB message cleared 1 MB, 12% of a loaded server's CPU. Codec's pool
// (grpc-go's own tiered pool, given a tier at every power of two from 256
// bytes to 16 MiB) clears at most twice a message of up to 16 MiB. The
// wire format is grpc-go's: only the buffers differ.
type Codec struct {
	pool mem.BufferPool
}

// NewCodec returns a Codec with its own buffer pool.
func NewCodec() *Codec {
	sizes := make([]int, 0, 17)
	for size := 256; size <= 16<<20; size *= 2 {
		sizes = append(sizes, size)
	}
	return &Codec{pool: mem.NewTieredBufferPool(sizes...)}
}

// Name is the content subtype the codec answers: "proto", gRPC's default.
func (c *Codec) Name() string { return grpcproto.Name }

// Marshal encodes a protobuf message; messages over grpc-go's pooling
// threshold (1 KiB) go into a pooled buffer.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, err := message(v)
	if err != nil {
		return nil, err
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the size was just computed
	if mem.IsBelowBufferPoolingThreshold(size) {
		data, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(data)}, nil
	}
	buf := c.pool.Get(size)
	if _, err := opts.MarshalAppend((*buf)[:0], m); err != nil {
		c.pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, c.pool)}, nil
}

// Unmarshal decodes a protobuf message from the frames it arrived in.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, err := message(v)
	if err != nil {
		return err
	}
	buf := data.MaterializeToBuffer(c.pool)
	defer buf.Free()
	// proto.Unmarshal copies bytes fields, so the buffer may go back to
	// the pool when it returns.
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// message is v as a protobuf message, whether of the current API or, as
// grpc-go's codec accepts them, of the older one.
func message(v any) (proto.Message, error) {
	switch m := v.(type) {
	case protoadapt.MessageV2:
		return m, nil
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m), nil
	}
	return nil, fmt.Errorf("grpcapi: %T is not a protobuf message", v)
}
