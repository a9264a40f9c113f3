package serving

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerasgo/kerasgo/errkind"
)

// Memory a request holds, as admission charges it (bytes). The figures are
// upper bounds for the JSON bodies that make them largest, so the sum over
// the requests in flight bounds what they hold together.
const (
	// rowsPathFactor covers a body read for a rows or text model: the body
	// itself plus its instances as float32 (each JSON number takes at
	// least two bytes, a digit and a separator, and becomes four).
	rowsPathFactor = 3
	// treeBytesPerValue covers one JSON value of a body read as a parse
	// tree (TF Serving's tensor rules, classify, regress): fastjson's value
	// (80 bytes), the pointer to it, and its cache's growth by doubling,
	// plus the tensor element it becomes. Measured in
	// TestTreeBytesPerValue.
	treeBytesPerValue = 600
	// requestOverhead covers what any request holds besides its body and
	// values: the JSON decoder's state, headers, the response's buffer.
	requestOverhead = 64 << 10
	// outputBytesPerValue covers one output value: the float32 and its JSON
	// text ("-1.2345678e-05,").
	outputBytesPerValue = 20
)

// errTooBig is a request that alone needs more memory than the server lets
// all requests hold: it can never be admitted (413).
type errTooBig struct{ need, limit int64 }

func (e errTooBig) Error() string {
	return fmt.Sprintf("the request needs about %d bytes of memory, more than the %d the server lets all requests in flight hold (--max-inflight-bytes): send fewer instances per request", e.need, e.limit)
}

// admission bounds the memory that requests in flight hold together. Each
// request reserves its estimate before it reads its body and grows the
// reservation as the estimate firms up; a reservation that does not fit is
// refused with ErrOverloaded (503, as TF Serving answers a full batching
// queue) instead of growing the process.
type admission struct {
	limit int64
	gauge prometheus.Gauge
	mu    sync.Mutex
	used  int64
}

// reservation is one request's share of the bound.
type reservation struct {
	a    *admission
	held int64
}

func (a *admission) reservation() *reservation { return &reservation{a: a} }

// grow adds n bytes to the reservation, or refuses.
func (r *reservation) grow(n int64) error {
	if n <= 0 {
		return nil
	}
	a := r.a
	if r.held+n > a.limit {
		return &errkind.Error{Kind: errkind.TooLarge, Err: errTooBig{need: r.held + n, limit: a.limit}}
	}
	a.mu.Lock()
	if a.used+n > a.limit {
		used := a.used
		a.mu.Unlock()
		return fmt.Errorf("%w (%d of %d bytes held by requests in flight, this one needs %d more)", ErrOverloaded, used, a.limit, n)
	}
	a.used += n
	a.mu.Unlock()
	r.held += n
	a.gauge.Add(float64(n))
	return nil
}

// release gives the whole reservation back.
func (r *reservation) release() {
	if r.held == 0 {
		return
	}
	r.a.mu.Lock()
	r.a.used -= r.held
	r.a.mu.Unlock()
	r.a.gauge.Sub(float64(r.held))
	r.held = 0
}
