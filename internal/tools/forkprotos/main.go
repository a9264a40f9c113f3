// Command forkprotos writes the FileDescriptorSet of TensorFlow's core protos
// exactly as the Go bindings fork registers them (tensor.proto,
// meta_graph.proto, error_codes.proto and what they import, without
// google/protobuf/*). scripts/gen_proto.sh hands it to protoc with
// --descriptor_set_in, so the generated TF Serving code refers to the very
// descriptors the fork registers at start-up: compiling TensorFlow's .proto
// sources again would register the same files twice, which panics.
//
// Usage: go run ./internal/tools/forkprotos -o third_party/tfserving_proto/fork_deps.binpb
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	_ "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	_ "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// roots are the files TF Serving's protos import from TensorFlow.
var roots = []string{
	"tensorflow/core/framework/tensor.proto",
	"tensorflow/core/protobuf/meta_graph.proto",
	"tensorflow/core/protobuf/error_codes.proto",
	// For session_service.proto (SessionRunLog in prediction_log.proto).
	"tensorflow/core/protobuf/config.proto",
	"tensorflow/core/protobuf/named_tensor.proto",
}

func main() {
	out := flag.String("o", "", "file to write the FileDescriptorSet to")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "forkprotos: -o is required")
		os.Exit(2)
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "forkprotos:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	// visit adds fd after its imports, the order protoc expects.
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		// Well-known types come from protoc's own include directory.
		if !strings.HasPrefix(fd.Path(), "google/protobuf/") {
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
	}
	for _, path := range roots {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		visit(fd)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&set)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	return os.WriteFile(out, b, 0o644)
}
