package tfrecord_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/tfrecord"
)

// want are the records scripts/make_tfrecord_testdata.py wrote with
// TensorFlow's tf.io.TFRecordWriter into testdata/tensorflow.tfrecord.
func want() [][]byte {
	var ramp []byte
	for range 2 {
		for b := range 256 {
			ramp = append(ramp, byte(b))
		}
	}
	return [][]byte{{}, []byte("kerasgo"), ramp}
}

func readAll(t *testing.T, data []byte) ([][]byte, error) {
	t.Helper()
	r := tfrecord.NewReader(bytes.NewReader(data), 1<<20)
	var got [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, slices.Clone(rec))
	}
}

// TestTensorFlowFile reads the file TensorFlow wrote, writes the same
// records back byte for byte, and finds every kind of damage.
func TestTensorFlowFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "tensorflow.tfrecord"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, file)
	if err != nil || !slices.EqualFunc(got, want(), bytes.Equal) {
		t.Fatalf("read %q (%v), want %q", got, err, want())
	}
	var out bytes.Buffer
	w := tfrecord.NewWriter(&out)
	for _, rec := range want() {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), file) {
		t.Fatalf("written %x, TensorFlow wrote %x", out.Bytes(), file)
	}

	flip := func(at int) []byte {
		b := slices.Clone(file)
		b[at] ^= 1
		return b
	}
	last := 12 + 4 + 12 + 7 + 4 // where the third record starts
	for name, c := range map[string]struct {
		data      []byte
		read      int
		says      string
		truncated bool
	}{
		"torn last record":          {file[:len(file)-10], 2, "record 3: 506 of its 516 bytes, then the end", true},
		"torn header":               {file[:last+5], 2, "record 3: 5 bytes of its 12-byte header", true},
		"a length bit flipped":      {flip(last), 2, "record 3: its length does not match its checksum", false},
		"a data bit flipped":        {flip(last + 12 + 100), 2, "record 3: its data does not match its checksum", false},
		"a record longer than held": {file, 2, "more than the", false},
	} {
		t.Run(name, func(t *testing.T) {
			limit := int64(1 << 20)
			if strings.HasPrefix(name, "a record longer") {
				limit = 100
			}
			r := tfrecord.NewReader(bytes.NewReader(c.data), limit)
			n := 0
			var err error
			for ; ; n++ {
				if _, err = r.Next(); err != nil {
					break
				}
			}
			if n != c.read || !errors.Is(err, tfrecord.ErrCorrupt) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("read %d records, then %v; want %d, then corruption saying %q", n, err, c.read, c.says)
			}
			if errors.Is(err, tfrecord.ErrTruncated) != c.truncated {
				t.Errorf("%v: matches ErrTruncated %v, want %v", err, !c.truncated, c.truncated)
			}
		})
	}
}
