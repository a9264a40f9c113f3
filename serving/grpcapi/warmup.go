package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfrecord"
)

// WarmupFile is where TF Serving reads a version's warmup records from,
// under its directory.
const WarmupFile = "assets.extra/tf_serving_warmup_requests"

// MaxWarmupRecords is the most records a warmup file may hold, as in TF
// Serving.
const MaxWarmupRecords = 1000

// maxWarmupRecordBytes bounds one record: a PredictionLog holding a request
// and its response.
const maxWarmupRecordBytes = 1 << 30

// Warmup replays a version's warmup records before it takes traffic, as TF
// Serving does (serving.Config.Warmup takes it): the TFRecord file
// assets.extra/tf_serving_warmup_requests under dir, of
// tensorflow.serving.PredictionLog messages, each request run once on mv
// (predict, classify, regress and multi-inference logs; others are
// refused). A version without the file has nothing to replay (0, nil). Any
// failure is the version's: a record that does not parse or fails, a
// damaged file, more than 1,000 records.
func Warmup(ctx context.Context, mv *serving.ModelVersion, dir string) (int, error) {
	path := filepath.Join(dir, filepath.FromSlash(WarmupFile))
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("warmup: %w", err)
	}
	defer f.Close()
	r := tfrecord.NewReader(f, maxWarmupRecordBytes)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("warmup %s: %w; is it a TFRecord file of PredictionLog?", path, err)
		}
		if n++; n > MaxWarmupRecords {
			return n - 1, fmt.Errorf("warmup %s: more than %d records", path, MaxWarmupRecords)
		}
		var log tfservingpb.PredictionLog
		if err := proto.Unmarshal(rec, &log); err != nil {
			return n, fmt.Errorf("warmup %s: record %d is not a PredictionLog: %w", path, n, err)
		}
		if err := replay(ctx, mv, &log); err != nil {
			return n, fmt.Errorf("warmup %s: record %d: %w", path, n, err)
		}
	}
}

// replay runs a logged request.
func replay(ctx context.Context, mv *serving.ModelVersion, log *tfservingpb.PredictionLog) error {
	noLimit := func(int64) error { return nil } // a local file the operator put there
	switch l := log.GetLogType().(type) {
	case *tfservingpb.PredictionLog_PredictLog:
		req := l.PredictLog.GetRequest()
		inputs := make(map[string]tensor.Tensor, len(req.GetInputs()))
		for alias, tp := range req.GetInputs() {
			t, err := tensorproto.FromProto(alias, tp, noLimit)
			if err != nil {
				return err
			}
			inputs[alias] = t
		}
		_, err := mv.Predict(ctx, req.GetModelSpec().GetSignatureName(), inputs)
		return err
	case *tfservingpb.PredictionLog_ClassifyLog:
		req := l.ClassifyLog.GetRequest()
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return err
		}
		_, err = mv.RunExamples(ctx, serving.MethodClassify, req.GetModelSpec().GetSignatureName(), examples)
		return err
	case *tfservingpb.PredictionLog_RegressLog:
		req := l.RegressLog.GetRequest()
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return err
		}
		_, err = mv.RunExamples(ctx, serving.MethodRegress, req.GetModelSpec().GetSignatureName(), examples)
		return err
	case *tfservingpb.PredictionLog_MultiInferenceLog:
		req := l.MultiInferenceLog.GetRequest()
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return err
		}
		for _, task := range req.GetTasks() {
			if m := task.GetMethodName(); m != serving.MethodClassify && m != serving.MethodRegress {
				return errkind.New(errkind.Unimplemented, "unsupported signature method_name in a multi-inference log: %s", m)
			}
			if _, err := mv.RunExamples(ctx, task.GetMethodName(), task.GetModelSpec().GetSignatureName(), examples); err != nil {
				return err
			}
		}
		return nil
	case nil:
		return nil // an empty log: TF Serving skips it too
	default:
		return errkind.New(errkind.Unimplemented, "unsupported log_type for warmup: %T", l)
	}
}
