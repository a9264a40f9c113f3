// Package tfrecord reads and writes TFRecord files, TensorFlow's framing of
// a sequence of binary records (tf.io.TFRecordWriter): each record is its
// length (8 bytes, little-endian), a masked CRC-32C of those 8 bytes, the
// data, and a masked CRC-32C of the data. TF Serving's warmup files
// (assets.extra/tf_serving_warmup_requests) and request logs are TFRecords
// of PredictionLog messages.
//
// The format is written here by hand: TensorFlow's Go bindings have no
// TFRecord I/O, and it is four fields and a checksum.
package tfrecord

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrCorrupt marks a record whose length or data does not match its
// checksum, or that ends before its length says (ErrTruncated).
var ErrCorrupt = errors.New("corrupt TFRecord")

// ErrTruncated marks a record cut short by the end of the stream, as a
// crash mid-write leaves the last record of a file. It matches ErrCorrupt
// too.
var ErrTruncated = fmt.Errorf("truncated record (%w)", ErrCorrupt)

// maskDelta is TensorFlow's constant for masking CRCs (tsl/lib/hash/crc32c.h).
const maskDelta = 0xa282ead8

func crc(b []byte) uint32 {
	c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	return ((c >> 15) | (c << 17)) + maskDelta
}

// Reader reads the records of a TFRecord stream one at a time.
type Reader struct {
	r   *bufio.Reader
	n   int   // records read
	max int64 // longest record accepted
	buf []byte
}

// NewReader returns a Reader of r accepting records of up to maxRecord
// bytes (a longer length is corruption, or not a TFRecord file).
func NewReader(r io.Reader, maxRecord int64) *Reader {
	return &Reader{r: bufio.NewReader(r), max: maxRecord}
}

// Next returns the next record's data, valid until the following call. At
// the end of the stream it returns io.EOF; a damaged or truncated record
// returns an error matching ErrCorrupt that says which record it was, and
// also ErrTruncated when the stream ended inside the record.
func (r *Reader) Next() ([]byte, error) {
	var head [12]byte
	n, err := io.ReadFull(r.r, head[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, fmt.Errorf("record %d: %d bytes of its 12-byte header, then the end: %w", r.n+1, n, ErrTruncated)
	}
	length := binary.LittleEndian.Uint64(head[:8])
	if crc(head[:8]) != binary.LittleEndian.Uint32(head[8:]) {
		return nil, fmt.Errorf("record %d: its length does not match its checksum: %w", r.n+1, ErrCorrupt)
	}
	if length > uint64(r.max) {
		return nil, fmt.Errorf("record %d: %d bytes, more than the %d accepted: %w", r.n+1, length, r.max, ErrCorrupt)
	}
	if uint64(cap(r.buf)) < length+4 {
		r.buf = make([]byte, length+4)
	}
	body := r.buf[:length+4]
	if n, err := io.ReadFull(r.r, body); err != nil {
		return nil, fmt.Errorf("record %d: %d of its %d bytes, then the end: %w", r.n+1, n, length+4, ErrTruncated)
	}
	data := body[:length]
	if crc(data) != binary.LittleEndian.Uint32(body[length:]) {
		return nil, fmt.Errorf("record %d: its data does not match its checksum: %w", r.n+1, ErrCorrupt)
	}
	r.n++
	return data, nil
}

// Writer writes records to a TFRecord stream.
type Writer struct {
	w io.Writer
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes one record, in one call to the underlying writer.
func (w *Writer) Write(data []byte) error {
	rec := make([]byte, 12, 16+len(data))
	binary.LittleEndian.PutUint64(rec, uint64(len(data)))
	binary.LittleEndian.PutUint32(rec[8:], crc(rec[:8]))
	rec = append(rec, data...)
	rec = binary.LittleEndian.AppendUint32(rec, crc(data))
	_, err := w.w.Write(rec)
	return err
}
