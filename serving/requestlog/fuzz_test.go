package requestlog_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// FuzzRowReader reads arbitrary bytes, and arbitrary records in TFRecord
// framing, as a request log: it must not panic, every error names the
// file, and every row it gives has the width asked for.
func FuzzRowReader(f *testing.F) {
	var framed bytes.Buffer
	w := tfrecord.NewWriter(&framed)
	for _, rec := range [][]byte{
		predictLog(f, "a", tensor.Tensor{DType: tensor.Float32, Shape: []int64{2, 2}, Data: []float32{1, 2, 3, 4}}, []float32{0.5, 0.5}, 1),
		predictLog(f, "b", tensor.Tensor{DType: tensor.String, Shape: []int64{1}, Data: [][]byte{[]byte("text")}}, []float32{1}, 1),
	} {
		if err := w.Write(rec); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(framed.Bytes(), false)
	f.Add([]byte("id,label\n1,a\n"), false)
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, true)
	f.Fuzz(func(t *testing.T, data []byte, frame bool) {
		if frame { // data as one record's payload
			var b bytes.Buffer
			if err := tfrecord.NewWriter(&b).Write(data); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		r := requestlog.NewRowReader(bytes.NewReader(data), "fuzz.tfrecord", rowio.ReaderOptions{Dim: 2})
		for range 10000 {
			var row rowio.Row
			err := r.Read(&row)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.tfrecord") {
					t.Fatalf("an error that does not name the file: %v", err)
				}
				return
			}
			if row.Text == "" && len(row.Features) != 2 {
				t.Fatalf("a row of %d features, want 2", len(row.Features))
			}
		}
	})
}
