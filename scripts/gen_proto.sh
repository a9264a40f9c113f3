#!/usr/bin/env bash
# Regenerates the Go code for TensorFlow Serving's gRPC API (`make proto`):
#   serving/tfservingpb            tensorflow_serving/apis and config (proto
#                                  package tensorflow.serving), with the
#                                  PredictionService and ModelService stubs
#   serving/tfservingpb/examplepb  tensorflow/core/example/{example,feature}
#   serving/oippb                  the Open Inference Protocol (KServe v2; proto
#                                  package inference), with the
#                                  GRPCInferenceService stubs
# from the sources in third_party/tfserving_proto and third_party/oip_proto
# (their PROVENANCE.md files say where each comes from). TensorFlow's core protos (tensor, meta_graph,
# error_codes, ...) are not generated: every import of them is mapped with an
# M option to the package the Go bindings fork already has, and protoc reads
# their descriptors from fork_deps.binpb, dumped from the fork itself
# (internal/tools/forkprotos). Registering them twice would panic at start-up.
#
# Needs protoc >= 3.15 (Debian's protobuf-compiler, installed with apt-get
# when missing) and installs protoc-gen-go at the protobuf version in go.mod
# and protoc-gen-go-grpc v1.6.2 under $KERASGO_CACHE/bin. CI never runs this:
# the generated code is committed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
src=third_party/tfserving_proto
bin=${KERASGO_CACHE:-$HOME/.cache/kerasgo}/bin
mkdir -p "$bin"
export PATH="$bin:$PATH"

if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/any.proto ]; then
	echo "gen_proto: installing protobuf-compiler and libprotobuf-dev" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get install -y protobuf-compiler libprotobuf-dev >&2
fi
protobuf_version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
GOBIN=$bin go install "google.golang.org/protobuf/cmd/protoc-gen-go@$protobuf_version"
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

# The fork's descriptors, rebuilt so a changed fork version shows up as a diff.
go run ./internal/tools/forkprotos -o "$src/fork_deps.binpb"

mod=github.com/kerasgo/kerasgo
pb=$mod/serving/tfservingpb
fork=github.com/galeone/tensorflow/tensorflow/go
framework=$fork/core/framework
core=$fork/core/protobuf/for_core_protos_go_proto

serving=$(cd "$src" && find tensorflow_serving -name '*.proto' | sort)
examples=(tensorflow/core/example/example.proto tensorflow/core/example/feature.proto)

# One M option for every file protoc sees, generated or imported.
m=()
for f in $serving; do m+=("M$f=$pb;tfservingpb"); done
for f in "${examples[@]}"; do m+=("M$f=$pb/examplepb;examplepb"); done
m+=("Mgoogle/protobuf/any.proto=google.golang.org/protobuf/types/known/anypb"
	"Mgoogle/protobuf/wrappers.proto=google.golang.org/protobuf/types/known/wrapperspb")
for name in attr_value full_type function graph node_def op_def resource_handle tensor tensor_shape types variable versions; do
	m+=("Mtensorflow/core/framework/$name.proto=$framework/${name}_go_proto")
done
for name in error_codes meta_graph saved_object_graph saver struct trackable_object_graph config named_tensor; do
	m+=("Mtensorflow/core/protobuf/$name.proto=$core")
done
opts=$(IFS=,; echo "module=$mod,${m[*]}")

rm -f serving/tfservingpb/*.pb.go serving/tfservingpb/examplepb/*.pb.go
protoc -I "$src" -I /usr/include --descriptor_set_in="$src/fork_deps.binpb" \
	--go_out=. --go_opt="$opts" --go-grpc_out=. --go-grpc_opt="$opts" \
	$serving "${examples[@]}"
echo "gen_proto: $(ls serving/tfservingpb/*.pb.go serving/tfservingpb/examplepb/*.pb.go | wc -l) files in serving/tfservingpb (protoc $(protoc --version | cut -d' ' -f2))"

# The Open Inference Protocol: its .proto has no go_package option, so the
# package comes from an M option.
oip=third_party/oip_proto
oipopts="module=$mod,Mopen_inference_grpc.proto=$mod/serving/oippb;oippb"
rm -f serving/oippb/*.pb.go
protoc -I "$oip" --go_out=. --go_opt="$oipopts" --go-grpc_out=. --go-grpc_opt="$oipopts" open_inference_grpc.proto
echo "gen_proto: $(ls serving/oippb/*.pb.go | wc -l) files in serving/oippb"
