package grpcapi

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// serializedExamples turns a request's Input into the serialized
// tf.Examples a classification or regression signature takes. With a
// context, each is the context's bytes followed by the example's, as TF
// Serving builds them: parsed, the example's features extend the
// context's and win over them.
func serializedExamples(in *tfservingpb.Input) ([][]byte, error) {
	var (
		examples = in.GetExampleList().GetExamples()
		prefix   []byte
	)
	if with := in.GetExampleListWithContext(); with != nil {
		examples = with.GetExamples()
		if with.GetContext() != nil {
			b, err := proto.Marshal(with.GetContext())
			if err != nil {
				return nil, errkind.New(errkind.InvalidInput, "context: %v", err)
			}
			prefix = b
		}
	}
	if len(examples) == 0 {
		return nil, errkind.New(errkind.InvalidInput, "Input is empty.")
	}
	out := make([][]byte, len(examples))
	for i, ex := range examples {
		b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(append([]byte(nil), prefix...), ex)
		if err != nil {
			return nil, errkind.New(errkind.InvalidInput, "example %d: %v", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// classify runs a classification signature: its "classes" (strings) and
// "scores" (floats), either of which may be missing, both [n] or [n, k].
func classify(ctx context.Context, mv *serving.ModelVersion, signature string, examples [][]byte) (*tfservingpb.ClassificationResult, error) {
	outputs, err := mv.RunExamples(ctx, serving.MethodClassify, signature, examples)
	if err != nil {
		return nil, err
	}
	results, err := serving.Classifications(outputs, int64(len(examples)))
	if err != nil {
		return nil, fmt.Errorf("signature %q: %w", signature, err)
	}
	return serving.ClassificationResult(results), nil
}

// regress runs a regression signature: its "outputs", one float per
// example ([n] or [n, 1]).
func regress(ctx context.Context, mv *serving.ModelVersion, signature string, examples [][]byte) (*tfservingpb.RegressionResult, error) {
	outputs, err := mv.RunExamples(ctx, serving.MethodRegress, signature, examples)
	if err != nil {
		return nil, err
	}
	values, err := serving.Regressions(outputs, int64(len(examples)))
	if err != nil {
		return nil, fmt.Errorf("signature %q: %w", signature, err)
	}
	return serving.RegressionResult(values), nil
}
