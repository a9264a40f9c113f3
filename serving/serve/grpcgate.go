package serve

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
)

// grpcGate admits a gRPC call by the memory its message will hold, before
// gRPC reads the message.
//
// Why not grpc-go's own transport: it reads a whole message into memory
// before any handler or interceptor runs, so a reservation made there comes
// too late (48 clients sending 100 MB each made a server with a 256 MiB
// bound hold 2 GB), and its tap handle runs before the message's length is
// known. Served through net/http instead (grpc.Server.ServeHTTP), the gate
// reads the five-byte prefix that gives the message's length, reserves what
// reading and decoding it will hold (messageCharge) in the same
// serving.Server admission REST requests use, and only then lets gRPC read
// the body. A call that does not fit is answered at once, without reading
// its message: UNAVAILABLE when the requests in flight hold too much,
// RESOURCE_EXHAUSTED when it could never fit (grpcapi.Status). The
// reservation travels in the call's context, where grpcapi charges the
// decoded tensors to it.
type grpcGate struct {
	srv    *serving.Server
	grpc   *grpc.Server
	maxMsg int
}

// messageCharge is what a gRPC message of n bytes holds while it is read
// and decoded: its bytes as received (in chunks), the contiguous copy gRPC
// makes of them for the decoder, and the decoded protobuf, which copies
// them again (tensor_content and strings). Measured: 16 calls of 100 MB
// kept 387 MB live under a 256 MiB bound when this was 2 × n.
func messageCharge(n int64) int64 { return 3 * n }

func (g *grpcGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		g.grpc.ServeHTTP(w, r) // gRPC refuses what is not a gRPC call its way
		return
	}
	res, err := g.srv.Reserve()
	if err != nil {
		refuse(w, err)
		return
	}
	defer res.Release()
	var prefix [5]byte
	n, err := io.ReadFull(r.Body, prefix[:])
	if err == nil {
		// A message over the size limit is gRPC's to refuse, by its rule.
		if length := int64(binary.BigEndian.Uint32(prefix[1:])); length <= int64(g.maxMsg) {
			if err := res.Grow(messageCharge(length)); err != nil {
				refuse(w, err)
				return
			}
		}
	}
	r.Body = prefixedBody{io.MultiReader(bytes.NewReader(prefix[:n]), r.Body), r.Body}
	g.grpc.ServeHTTP(w, r.WithContext(grpcapi.WithReservation(r.Context(), res)))
}

// prefixedBody is a request body whose first bytes were read ahead.
type prefixedBody struct {
	io.Reader
	io.Closer
}

// refuse answers a call with the gRPC status of err and no message: a
// trailers-only response, as gRPC itself ends a call it refuses.
func refuse(w http.ResponseWriter, err error) {
	st := grpcapi.Status(err)
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(st.Code())))
	h.Set("Grpc-Message", url.PathEscape(st.Message()))
	w.WriteHeader(http.StatusOK)
}
