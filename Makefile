# kerasgo: `make demo` runs the main job on the bundled model and data,
# `make test` runs every check. Both set up the TensorFlow C library first
# (scripts/setup_tf.sh: a cached virtualenv under $KERASGO_CACHE, default
# ~/.cache/kerasgo; minutes on the first run, a second or two afterwards).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Every recipe line that builds or runs Go code evaluates the environment
# setup_tf.sh prints (CGO flags, rpath, the venv's interpreter). kerasgo keeps
# TensorFlow's log lines quiet by itself (tflog); nothing is set here.

TFENV := eval "$$(bash scripts/setup_tf.sh --env)"
OUT := out/demo

.PHONY: setup build test beamtest demo bench soak fuzz parity proto testdata lint gotest puregotest pytest clean

setup:
	bash scripts/setup_tf.sh >/dev/null

build: setup
	@# -buildvcs=auto stamps the commit for `kerasgo version` even where GOFLAGS turns it off.
	$(TFENV); go build -buildvcs=auto -o bin/kerasgo ./cmd/kerasgo

lint: setup
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(TFENV); go mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }
	$(TFENV); go vet ./... && go tool staticcheck ./...

# Packages whose tests start no goroutine: the race detector has nothing to
# watch there (their code runs concurrently in score's and the root's tests,
# which it does watch), so puregotest runs them once, at full speed.
SEQUENTIAL := rowio dense sparse tensor evaluation textvec errkind internal/learningcurve tfrecord

gotest: setup
	@! grep -nE '\bgo (func|[A-Za-z_.]+\()|\.Go\(|t\.Parallel\(\)' $(addsuffix /*_test.go,$(SEQUENTIAL)) /dev/null \
		|| { echo "a SEQUENTIAL package's tests start goroutines: move it out of SEQUENTIAL"; exit 1; }
	@# Test binaries print TensorFlow's log lines only when a test fails; keep
	@# those to errors (the kerasgo binary needs no such setting).
	$(TFENV); TF_CPP_MIN_LOG_LEVEL=2 go test -race -count=1 $$(go list ./... | grep -vxE 'github.com/kerasgo/kerasgo/($(subst $(eval) ,|,$(SEQUENTIAL)))')
	@# RSS checks cannot run under the race detector's shadow memory.
	$(TFENV); TF_CPP_MIN_LOG_LEVEL=2 MALLOC_ARENA_MAX=2 go test -count=1 -run TestNoLeak ./tfmodel

pytest: build
	$(TFENV); TF_CPP_MIN_LOG_LEVEL=2 "$$KERASGO_PYTHON" -m pytest -q -n 2 --dist worksteal scripts/tests

# The packages that must build and test without cgo: only tfmodel (and the
# commands and tests that use it) may touch TensorFlow. A cgo import anywhere
# below fails this build.
PURE_GO := ./rowio/... ./dense/... ./sparse/... ./tensor/... ./tfrecord/... ./fit/... ./evaluation/... ./score/... ./serving/... ./textvec/... \
	./atomicfile/... ./errkind/... ./internal/learningcurve/... ./promote/... ./cmd/kerasgo-loadgen/...

puregotest:
	CGO_ENABLED=0 go vet $(PURE_GO)
	CGO_ENABLED=0 go test -count=1 $(PURE_GO)

# The four groups share nothing but the build, so they run side by side
# (TEST_JOBS=1 runs them one after another); each group's output is printed
# whole when it ends.
TEST_JOBS ?= 4
test:
	@echo "make test: lint, puregotest, gotest and pytest, $(TEST_JOBS) at a time; each prints its output when it ends"
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target lint puregotest gotest pytest

# The Apache Beam pipeline (beam/, its own module): vet, staticcheck and its
# Prism tests. Separate from `test` because compiling Beam's dependencies
# takes minutes on a clean machine; .ci/run runs both.
beamtest: setup
	$(TFENV); go build -o bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	$(TFENV); cd beam && { go mod tidy -diff || { echo "beam/go.mod is not tidy: run go mod tidy in beam"; exit 1; }; } && go vet ./... && ../bin/staticcheck ./... && TF_CPP_MIN_LOG_LEVEL=2 go test -count=1 ./... 2>&1 | grep -v ' level=INFO '

demo: build
	@mkdir -p $(OUT)
	@echo "== 1. the bundled model (the question's architecture, trained by Keras on 20 fortune categories)"
	./bin/kerasgo inspect testdata/models/fortunes
	@echo
	@echo "== 2. score a file: $$(wc -l < testdata/features/fortunes/test.libsvm) rows of sparse bag-of-words features (libsvm)"
	./bin/kerasgo predict testdata/models/fortunes --input testdata/features/fortunes/test.libsvm --top-k 3 --output $(OUT)/predictions.csv
	@head -5 $(OUT)/predictions.csv
	@echo "   (all $$(($$(wc -l < $(OUT)/predictions.csv) - 1)) rows in $(OUT)/predictions.csv; drop --top-k for every class's probability)"
	@echo
	@echo "== 3. retrain from Go on the training rows (shuffled exactly every epoch), validate the model as loaded and each epoch, keep the best, plot the curves"
	rm -rf $(OUT)/retrained
	./bin/kerasgo train testdata/models/fortunes --data testdata/features/fortunes/train.libsvm \
		--validation-data testdata/features/fortunes/test.libsvm --epochs 3 --batch-size 64 --seed 1 \
		--out $(OUT)/retrained --plot $(OUT)/learning-curves.png > $(OUT)/train.log
	@sed -n '1,/^training /p' $(OUT)/train.log
	@echo "   (the full evaluation block that ends training is in $(OUT)/train.log)"
	@echo
	@echo "== 4. evaluate the retrained model: honest metrics, baselines, diagnosis (and an HTML report)"
	./bin/kerasgo evaluate $(OUT)/retrained --data testdata/features/fortunes/test.libsvm --report $(OUT)/report.html
	@echo
	@echo "== 5. TensorFlow loads the model Go saved, and scores as Go does"
	./bin/kerasgo predict $(OUT)/retrained --input testdata/golden/fortunes_inputs.npy --output $(OUT)/golden-predictions.csv
	$(TFENV); "$$KERASGO_PYTHON" scripts/check_saved_model.py $(OUT)/retrained testdata/golden/fortunes_inputs.npy $(OUT)/golden-predictions.csv
	@echo "   (files in $(OUT): predictions.csv, retrained/, learning-curves.png, report.html)"
	@echo
	@echo "== 6. keep a served model fresh: serve a base path, retrain into it, promote only if better"
	bash scripts/demo_fresh.sh $(OUT)
	@echo
	@echo "== 7. watch live traffic: request logs, and the diagnosis applied to what the server answers"
	python3 scripts/demo_traffic.py $(OUT)

BENCH_MODEL = $${KERASGO_CACHE}/bench/question-10000-20

# Benchmarks: Go (tfmodel) against Keras on the same model shape, inputs and
# machine. Figures and ratios are kept in docs/benchmarks.md.
bench: build
	$(TFENV); [ -f "$(BENCH_MODEL)/assets/kerasgo.json" ] && grep -q '"sparse_product": "csr"' "$(BENCH_MODEL)/assets/kerasgo.json" || ./bin/kerasgo export --arch question --input-dim 10000 --classes 20 --seed 0 --out "$(BENCH_MODEL)"
	@# Per call, in interleaved repetitions: tfmodel against Keras on the same model, rows and
	@# machine, and the public API against tfgo on the fortunes model.
	$(TFENV); go test -c -o bin/tfmodel.test ./tfmodel && go test -c -o bin/kerasgo.test .
	$(TFENV); TF_CPP_MIN_LOG_LEVEL=2 "$$KERASGO_PYTHON" scripts/bench_calls.py --tfmodel-test bin/tfmodel.test --root-test bin/kerasgo.test --model "$(BENCH_MODEL)" --reps 5
	@# Batch scoring of a 300,000-row libsvm file, against the Python way, and RSS at 1,000,000 rows.
	$(TFENV); cd beam && go build -o ../bin/kerasgo-beam ./cmd/kerasgo-beam
	$(TFENV); "$$KERASGO_PYTHON" scripts/bench_predict.py --kerasgo bin/kerasgo --kerasgo-beam bin/kerasgo-beam --model "$(BENCH_MODEL)" --rows 300000 --rows-go-only 1000000
	@# One training epoch on the same file: kerasgo train against Keras model.fit.
	$(TFENV); "$$KERASGO_PYTHON" scripts/bench_train.py --kerasgo bin/kerasgo --model "$(BENCH_MODEL)" --rows 300000
	@# Serving on loopback: kerasgo serve's batching policies over REST and gRPC against
	@# Starlette under uvicorn, one worker per core, at 1 to 256 clients.
	$(TFENV); go build -o bin/kerasgo-loadgen ./cmd/kerasgo-loadgen
	$(TFENV); "$$KERASGO_PYTHON" scripts/bench_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model "$(BENCH_MODEL)"
	@# What logging every request costs a request (--request-log-dir), REST and gRPC.
	$(TFENV); "$$KERASGO_PYTHON" scripts/bench_requestlog.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model "$(BENCH_MODEL)"
	@# A version swap under load, with and without TF Serving's warmup records.
	$(TFENV); "$$KERASGO_PYTHON" scripts/bench_warmup.py --kerasgo bin/kerasgo --model "$(BENCH_MODEL)"

# Soak and abuse test of kerasgo serve on loopback (about 5 minutes): valid and
# hostile bodies from 64 clients, a version swap and a SIGTERM under load; then
# gRPC floods of 16 to 128 clients sending 20 or 100 MB messages at once.
# Fails on a connection error before the SIGTERM or RSS over the bound of
# docs/serving.md. Figures in docs/benchmarks.md.
soak: build
	$(TFENV); go build -o bin/kerasgo-loadgen ./cmd/kerasgo-loadgen
	$(TFENV); "$$KERASGO_PYTHON" scripts/soak_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --seconds 150
	@# gRPC floods with TF Serving's official client: peak RSS against the same bound.
	$(TFENV); for spec in "16 100" "48 100" "128 100" "48 20"; do set -- $$spec; \
		"$$KERASGO_PYTHON" scripts/flood_grpc.py --kerasgo bin/kerasgo --clients $$1 --mb $$2 || exit 1; done

# The heavier optimizer parity run (docs/optimizer-parity.md): every optimizer
# setting and schedule on every format against its own Keras, and the learning
# comparison over 5 seeds and 5 epochs (about 10 minutes).
parity: build
	$(TFENV); KERASGO_FULL_MATRIX=1 KERASGO_LEARNING_SEEDS=1,2,3,4,5 KERASGO_LEARNING_EPOCHS=5 TF_CPP_MIN_LOG_LEVEL=2 \
		"$$KERASGO_PYTHON" -m pytest -q -s scripts/tests/test_export_layers.py scripts/tests/test_learning_fortunes.py

# Regenerate serving/tfservingpb (TF Serving's gRPC API) from
# third_party/tfserving_proto. Needs protoc; CI does not: the code is committed.
proto:
	$(TFENV); bash scripts/gen_proto.sh

# Run every fuzz target for FUZZTIME each (their seed corpora run in every
# `make test`). New failing inputs land in the package's testdata/fuzz.
FUZZTIME ?= 30s
FUZZ_TARGETS := rowio:FuzzTableReader rowio:FuzzNPYReader rowio:FuzzLibSVMReader rowio:FuzzJSONLReader rowio:FuzzNextField rowio:FuzzPlainEntry \
	serving:FuzzDecodeTensors serving:FuzzDecodeRowBody serving:FuzzParseNumber serving/tensorproto:FuzzFromProto serving/requestlog:FuzzRowReader textvec:FuzzVectorize textvec:FuzzTokenizer
fuzz:
	for t in $(FUZZ_TARGETS); do \
		CGO_ENABLED=0 go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*} || exit 1; \
	done

# Regenerate the real datasets (Debian packages) and the Keras-made models and goldens.
testdata: setup
	$(TFENV); "$$KERASGO_PYTHON" scripts/make_dataset.py && "$$KERASGO_PYTHON" scripts/make_testdata.py

clean:
	rm -rf bin out
