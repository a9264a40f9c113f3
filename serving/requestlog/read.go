package requestlog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// MaxRecordBytes is the longest record Read accepts: a longer length is
// corruption, or not a request log.
const MaxRecordBytes = 1 << 30

// Read calls fn with each PredictionLog of a log file, in order, and
// returns how many it read. A last record cut short (a crash mid-write)
// is skipped, and torn says so; damage anywhere else, a record that is
// not a PredictionLog, or fn's error stops it with an error naming the
// file and the record.
func Read(path string, fn func(*tfservingpb.PredictionLog) error) (n int, torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("request log: %w", err)
	}
	defer f.Close()
	r := tfrecord.NewReader(f, MaxRecordBytes)
	for {
		rec, err := r.Next()
		switch {
		case err == io.EOF:
			return n, false, nil
		case errors.Is(err, tfrecord.ErrTruncated):
			return n, true, nil
		case err != nil && n == 0:
			return n, false, fmt.Errorf("request log %s: not a TFRecord file, or its first record is damaged: %w", path, err)
		case err != nil:
			return n, false, fmt.Errorf("request log %s: %w", path, err)
		}
		log := &tfservingpb.PredictionLog{}
		if err := proto.Unmarshal(rec, log); err != nil {
			return n, false, fmt.Errorf("request log %s: record %d is not a tensorflow.serving.PredictionLog: %w", path, n+1, err)
		}
		if err := fn(log); err != nil {
			return n, false, fmt.Errorf("request log %s: record %d: %w", path, n+1, err)
		}
		n++
	}
}

// RequestID is the id of the request a record logs: the client's, or the
// one the server made and sent back (X-Request-Id, gRPC x-request-id, the
// Open Inference Protocol's id). TF Serving's LogMetadata has no field for
// it; kerasgo serve writes it to request_origin.
func RequestID(log *tfservingpb.PredictionLog) string {
	return log.GetLogMetadata().GetRequestOrigin()
}
