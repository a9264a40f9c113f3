package fit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Data describes the rows a training run read, once, before its first step.
type Data struct {
	// TrainRows and ValRows count the rows trained on and validated on (the
	// held-out rows of a validation split count as validation rows).
	TrainRows, ValRows int
	// Bytes is the size of the parsed rows, and OnDisk whether they moved to
	// a temporary file because they did not fit Options.MemoryBudget.
	Bytes  int64
	OnDisk bool
	// ClassCounts counts training rows per class.
	ClassCounts []int
	// Order is how the labels of the training file follow each other.
	Order Order
}

// Order measures whether a file's rows are grouped by label: how often the
// label (the set of labels, for multi-label rows) changes from one row to the
// next, against how often it would change in a random order of the same rows.
type Order struct {
	Rows         int
	LabelChanges int
	// RandomChanges is the expected number of changes in a uniformly random
	// order: (rows − 1) × P(two random rows differ in label).
	RandomChanges float64
}

// Grouped reports whether the rows are clearly grouped by label: fewer than
// half the label changes a random order would show, in a file large enough
// to tell.
func (o Order) Grouped() bool {
	return o.Rows >= 100 && o.RandomChanges >= 20 && float64(o.LabelChanges) < 0.5*o.RandomChanges
}

// orderCounter computes an Order row by row.
type orderCounter struct {
	prev   string
	counts map[string]int
	o      Order
}

func labelKey(classes []int) string {
	if len(classes) == 1 {
		return strconv.Itoa(classes[0])
	}
	parts := make([]string, len(classes))
	for i, c := range classes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

func (c *orderCounter) add(classes []int) {
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	k := labelKey(classes)
	if c.o.Rows > 0 && k != c.prev {
		c.o.LabelChanges++
	}
	c.prev = k
	c.counts[k]++
	c.o.Rows++
}

func (c *orderCounter) order() Order {
	o := c.o
	n := float64(o.Rows)
	if o.Rows < 2 {
		return o
	}
	same := 0.0
	for _, k := range c.counts {
		same += float64(k) * float64(k-1)
	}
	o.RandomChanges = (n - 1) * (1 - same/(n*(n-1)))
	return o
}

// dataset is a training run's rows, parsed once.
type dataset struct {
	budget     budget
	train, val *rowStore
	info       Data
}

func (d *dataset) close() {
	d.train.close()
	if d.val != nil {
		d.val.close()
	}
}

// load reads the training rows (holding out a validation split) and the
// validation rows into stores.
func load(ctx context.Context, train, val Source, opts Options) (*dataset, error) {
	d := &dataset{budget: budget{limit: opts.MemoryBudget}}
	d.train = newRowStore(&d.budget, opts.TempDir, opts.createTemp)
	if val != nil || opts.ValidationSplit > 0 {
		d.val = newRowStore(&d.budget, opts.TempDir, opts.createTemp)
	}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	d.info.ClassCounts = make([]int, len(opts.Labels.Classes))
	var order orderCounter
	r, closer, err := train()
	if err != nil {
		return nil, fmt.Errorf("opening training data: %w", err)
	}
	err = forEachExample(ctx, r, opts.Labels, opts.TrainPath, func(i int, e Example) error {
		order.add(e.Classes)
		if heldOut(i, opts.ValidationSplit) {
			return d.val.add(&e)
		}
		for _, c := range e.Classes {
			d.info.ClassCounts[c]++
		}
		return d.train.add(&e)
	})
	if cerr := closer.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if val != nil {
		r, closer, err := val()
		if err != nil {
			return nil, fmt.Errorf("opening validation data: %w", err)
		}
		err = forEachExample(ctx, r, opts.Labels, opts.ValPath, func(_ int, e Example) error {
			return d.val.add(&e)
		})
		if cerr := closer.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	for _, s := range []*rowStore{d.train, d.val} {
		if s == nil {
			continue
		}
		if err := s.finish(); err != nil {
			return nil, err
		}
		d.info.Bytes += s.bytes()
		d.info.OnDisk = d.info.OnDisk || s.spilled()
	}
	if d.train.rows() == 0 {
		return nil, fmt.Errorf("%s: no training rows", opts.TrainPath)
	}
	if d.val != nil && d.val.rows() == 0 {
		path := opts.ValPath
		if val == nil {
			path = opts.TrainPath + " (validation split)"
		}
		return nil, fmt.Errorf("%s: no validation rows", path)
	}
	d.info.TrainRows = d.train.rows()
	if d.val != nil {
		d.info.ValRows = d.val.rows()
	}
	d.info.Order = order.order()
	ok = true
	return d, nil
}

// permutation returns the order an epoch visits n rows in: a uniformly random
// permutation drawn from the run's seed and the epoch (so a resumed epoch
// replays its order exactly), or file order when keepOrder is set.
func permutation(n int, seed uint64, epoch int, keepOrder bool) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	if !keepOrder {
		rng := rand.New(rand.NewPCG(seed, 0x6b657261+uint64(epoch)))
		rng.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	}
	return p
}

// batchOrErr is one item of a batch stream.
type batchOrErr struct {
	b   Batch
	err error
}

// streamBatches assembles the rows of s, in the order given (nil: stored
// order), into batches on a goroutine, a few batches ahead of the consumer,
// so that reading and assembling overlap the model's steps. firstRow skips
// rows already trained on (resume). Cancel ctx to stop it early.
func streamBatches(ctx context.Context, s *rowStore, order []int32, firstRow int, b *batcher, batchSize int) <-chan batchOrErr {
	out := make(chan batchOrErr, 2)
	go func() {
		defer close(out)
		send := func(it batchOrErr) bool {
			select {
			case out <- it:
				return true
			case <-ctx.Done():
				return false
			}
		}
		rr := &rowReader{s: s}
		var e Example
		n := s.rows()
		for k := firstRow; k < n; k++ {
			i := k
			if order != nil {
				i = int(order[k])
			}
			if err := rr.row(i, &e); err != nil {
				send(batchOrErr{err: err})
				return
			}
			b.add(e)
			if b.rows() == batchSize || k == n-1 {
				if !send(batchOrErr{b: b.take()}) {
					return
				}
			}
		}
	}()
	return out
}
