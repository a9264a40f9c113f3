package kerasgo_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/promote"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
)

// readmePrograms returns the README's ```go blocks, in order.
func readmePrograms(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		tb.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "```go":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// buildOutside builds programs (name to source) in a module of their own
// outside this one, as a user's module would be, requiring kerasgo through a
// replace directive; go vet must pass too. It returns each binary's path.
// One module with a directory per program lets one go command vet and build
// them all, sharing its work.
func buildOutside(tb testing.TB, programs map[string]string) map[string]string {
	tb.Helper()
	root, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	gomod := "module example.com/readme\n\ngo 1.26\n\nrequire github.com/kerasgo/kerasgo v0.0.0\n\nreplace github.com/kerasgo/kerasgo => " + root + "\n"
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum}
	for name, src := range programs {
		files[filepath.Join(name, "main.go")] = []byte(src)
	}
	for file, data := range files {
		path := filepath.Join(dir, file)
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o666); err != nil {
			tb.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "bin")
	for _, args := range [][]string{{"mod", "tidy"}, {"vet", "./..."}, {"build", "-o", bin + string(filepath.Separator), "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("README programs: go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	bins := make(map[string]string, len(programs))
	for name := range programs {
		bins[name] = filepath.Join(bin, name)
	}
	return bins
}

func TestREADMEPrograms(t *testing.T) {
	blocks := readmePrograms(t)
	if len(blocks) < 3 {
		t.Fatalf("the README has %d Go blocks, want at least 3 (score, serve, retrain and publish)", len(blocks))
	}
	name := regexp.MustCompile(`(?m)^// Command (\w+) `)
	programs := map[string]string{}
	for i, src := range blocks {
		if !strings.HasPrefix(src, "// Command ") || !strings.Contains(src, "\npackage main\n") {
			t.Fatalf("README Go block %d is not a complete program (a \"// Command NAME\" comment and package main):\n%s", i+1, src)
		}
		if strings.Contains(src, "kerasgo/internal/") {
			t.Errorf("README Go block %d imports an internal package", i+1)
		}
		n := name.FindStringSubmatch(src)[1]
		if _, dup := programs[n]; dup {
			t.Fatalf("two README Go blocks are command %s", n)
		}
		programs[n] = src
	}
	bins := buildOutside(t, programs)
	t.Run("scorefile writes every row", func(t *testing.T) {
		bin, ok := bins["scorefile"]
		if !ok {
			t.Fatal("no scorefile program in the README")
		}
		in := filepath.Join("testdata", "features", "fortunes", "test.libsvm")
		out := filepath.Join(t.TempDir(), "predictions.csv")
		cmd := exec.Command(bin, filepath.Join("testdata", "models", "fortunes"), in, out)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scorefile: %v\n%s", err, b)
		}
		rows := countLines(t, in)
		// tflog.Release: TensorFlow's start-up lines do not reach stderr.
		if want := fmt.Sprintf("scored %d rows into %s\n", rows, out); string(b) != want {
			t.Errorf("scorefile printed %q, want only %q", b, want)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
		if len(lines) != rows+1 || !strings.HasSuffix(string(got), "\n") {
			t.Fatalf("%d lines written (last %q), want a header and %d rows", len(lines), lines[len(lines)-1], rows)
		}
		for i, l := range lines[1:] {
			if strings.Count(l, ",") != strings.Count(lines[0], ",") {
				t.Fatalf("row %d has %d fields, the header %d: %q", i+1, strings.Count(l, ",")+1, strings.Count(lines[0], ",")+1, l)
			}
		}
		assertMode(t, out, 0o666)
	})
	t.Run("refresh publishes a version the server reads", func(t *testing.T) {
		bin, ok := bins["refresh"]
		if !ok {
			t.Fatal("no refresh program in the README")
		}
		base := t.TempDir()
		if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(filepath.Join("testdata", "models", "fortunes"))); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join("testdata", "features", "fortunes")
		cmd := exec.Command(bin, base, filepath.Join(data, "train.libsvm"), filepath.Join(data, "test.libsvm"))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("refresh: %v\n%s", err, b)
		}
		if !strings.Contains(string(b), "published version 2") {
			t.Fatalf("refresh did not publish version 2:\n%s", b)
		}
		versions, err := promote.List(base)
		if err != nil || len(versions) != 2 || versions[1].Name != "2" {
			t.Fatalf("base path versions %v, %v; want 1 and 2", versions, err)
		}
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			if e.Name() != "1" && e.Name() != "2" && e.Name() != ".kerasgo-promote.lock" {
				t.Errorf("left in the base path: %s", e.Name())
			}
		}
		assertMode(t, filepath.Join(base, "2"), 0o777)
		assertMode(t, filepath.Join(base, "2", "variables", "variables.index"), 0o666)
		m, err := kerasgo.Open(t.Context(), filepath.Join(base, "2"), kerasgo.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.PredictText(t.Context(), goldenTexts(t)[:3]); err != nil {
			t.Fatalf("the published version does not predict: %v", err)
		}
	})
	t.Run("rescorelog compares a request log's answers", func(t *testing.T) {
		bin, ok := bins["rescorelog"]
		if !ok {
			t.Fatal("no rescorelog program in the README")
		}
		// A log of two requests of three rows, all answered class 0 ("art"),
		// as kerasgo serve writes them.
		prefix := filepath.Join(t.TempDir(), "fortunes")
		w, err := requestlog.Open(prefix, requestlog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for r := range 2 {
			x := make([]float32, 3*256)
			answers := make([]float32, 3*20)
			for i := range 3 {
				x[i*256+r*3+i] = 1
				answers[i*20] = 1
			}
			rec, err := serving.PredictLog(map[string]tensor.Tensor{"features": {DType: tensor.Float32, Shape: []int64{3, 256}, Data: x}},
				map[string]tensor.Tensor{"probabilities": {DType: tensor.Float32, Shape: []int64{3, 20}, Data: answers}})
			if err != nil {
				t.Fatal(err)
			}
			rec.LogMetadata = &tfservingpb.LogMetadata{RequestOrigin: fmt.Sprintf("req-%d", r), ModelSpec: &tfservingpb.ModelSpec{Name: "fortunes"}}
			b, err := proto.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
		}
		w.Close()
		files, err := requestlog.Files(prefix)
		if err != nil || len(files) != 1 {
			t.Fatalf("%v %v", files, err)
		}
		cmd := exec.Command(bin, files[0])
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("rescorelog: %v\n%s", err, stderr.String())
		}
		if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 7 || !strings.HasPrefix(lines[1], "req-0#0,") {
			t.Errorf("rescorelog wrote %q, want a header and 6 rows named req-0#0 ...", lines)
		}
		if !strings.Contains(stderr.String(), "(fortunes version 0: 6 rows), the top class differs on") {
			t.Errorf("rescorelog said %q", stderr.String())
		}
	})
}

// assertMode checks that path has perm less the process umask.
func assertMode(tb testing.TB, path string, perm fs.FileMode) {
	tb.Helper()
	u := syscall.Umask(0)
	syscall.Umask(u)
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if want := perm &^ fs.FileMode(u); fi.Mode().Perm() != want {
		tb.Errorf("%s: mode %v, want %v (%v less the umask)", path, fi.Mode().Perm(), want, perm)
	}
}

func countLines(tb testing.TB, path string) int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestLeanImports: a program that imports the root package for Open and
// Predict links TensorFlow's bindings and protobuf, not the serving stack
// (serving, Prometheus, the JSON codecs, gRPC, net/http).
func TestLeanImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net/http" {
			t.Errorf("the root package links net/http")
		}
		for _, heavy := range []string{"github.com/kerasgo/kerasgo/serving", "github.com/prometheus/", "github.com/valyala/fastjson", "github.com/go-json-experiment/", "google.golang.org/grpc"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("the root package links %s", pkg)
			}
		}
	}
}
