package requestlog_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// Write a request log and read it back, as TensorFlow's TFRecord reader and
// TF Serving's PredictionLog parser would.
func Example() {
	dir, err := os.MkdirTemp("", "requestlog")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "fortunes")

	w, err := requestlog.Open(prefix, requestlog.Options{MaxFileBytes: 1 << 20, MaxTotalBytes: 16 << 20})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"req-1", "req-2"} {
		rec, err := proto.Marshal(&tfservingpb.PredictionLog{
			LogMetadata: &tfservingpb.LogMetadata{ModelSpec: &tfservingpb.ModelSpec{Name: "fortunes"}, RequestOrigin: id},
		})
		if err != nil {
			log.Fatal(err)
		}
		w.Write(rec) // never blocks; false if the record was dropped
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	files, err := requestlog.Files(prefix)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		_, _, err := requestlog.Read(f, func(l *tfservingpb.PredictionLog) error {
			fmt.Println(l.GetLogMetadata().GetModelSpec().GetName(), l.GetLogMetadata().GetRequestOrigin())
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// fortunes req-1
	// fortunes req-2
}
