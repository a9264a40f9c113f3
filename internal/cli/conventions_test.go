package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestExitCodes checks the command-line conventions of the go command that
// kerasgo follows: help on stdout with 0, unknown commands and help topics on
// stderr with 2.
func TestExitCodes(t *testing.T) {
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"no arguments":                 {nil, ExitOK, "Commands:", ""},
		"help":                         {[]string{"help"}, ExitOK, "Commands:", ""},
		"help a command":               {[]string{"help", "predict"}, ExitOK, "usage: kerasgo predict", ""},
		"help lists --verbose":         {[]string{"help", "inspect"}, ExitOK, "--verbose", ""},
		"help an unknown topic":        {[]string{"help", "nosuch"}, ExitUsage, "", "kerasgo help nosuch: unknown command"},
		"help with two topics":         {[]string{"help", "predict", "train"}, ExitUsage, "", "usage: kerasgo help"},
		"unknown command":              {[]string{"nosuch"}, ExitUsage, "", `unknown command "nosuch"`},
		"--help on a command":          {[]string{"train", "--help"}, ExitOK, "usage: kerasgo train", ""},
		"unknown flag":                 {[]string{"inspect", "--nosuch"}, ExitUsage, "", "unknown flag: --nosuch"},
		"--verbose before the command": {[]string{"--verbose", "help", "version"}, ExitOK, "usage: kerasgo version", ""},
		"version takes no arguments":   {[]string{"version", "x"}, ExitUsage, "", "unexpected arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stdout, tc.wantStdout) || (tc.wantStdout == "" && stdout != "") {
				t.Errorf("stdout %q, want it to contain %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) || (tc.wantStderr == "" && stderr != "") {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.wantStderr)
			}
		})
	}
}

// TestVersion checks kerasgo version against the TensorFlow the project pins
// (scripts/requirements.txt) and the Go toolchain running the test.
func TestVersion(t *testing.T) {
	pinned := ""
	f, err := os.Open(filepath.Join("..", "..", "scripts", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "tensorflow-cpu=="); ok {
			pinned = v
		}
	}
	if pinned == "" {
		t.Fatal("scripts/requirements.txt pins no tensorflow-cpu")
	}
	if tfc := os.Getenv("TF_C_DIR"); tfc != "" {
		t.Logf("TF_C_DIR=%s: the C library need not be the pinned wheel's", tfc)
	}
	out := mustRunCLI(t, "version")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("version printed %d lines, want 3:\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "kerasgo ") || len(lines[0]) <= len("kerasgo ") {
		t.Errorf("line 1 %q, want kerasgo's version", lines[0])
	}
	if want := "TensorFlow C library " + pinned; lines[1] != want && os.Getenv("TF_C_DIR") == "" {
		t.Errorf("line 2 %q, want %q", lines[1], want)
	}
	if want := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; lines[2] != want {
		t.Errorf("line 3 %q, want %q", lines[2], want)
	}
}

// TestInputPathWithComma scores a file whose name holds a comma: --input takes
// each value whole (a comma-separated list would split it in two).
func TestInputPathWithComma(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "fortunes,inputs.npy")
	data, err := os.ReadFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRunCLI(t, "predict", filepath.Join(testdata, "models", "fortunes"), "--input", in)
	got := parsePredictions(t, out)
	checkProbabilities(t, "a file whose name holds a comma", got.probabilities, goldenNPY(t, "fortunes_probabilities.npy"))
}

// TestFlagRanges checks that each numeric flag's message states the rule it
// enforces, and that the smallest allowed value is accepted.
func TestFlagRanges(t *testing.T) {
	model := filepath.Join(testdata, "models", "fortunes")
	inputs := filepath.Join(testdata, "golden", "fortunes_inputs.npy")
	train := filepath.Join(testdata, "features", "fortunes", "train.libsvm")
	predict := func(flags ...string) []string {
		return append([]string{"predict", model, "--input", inputs, "--output", filepath.Join(t.TempDir(), "p.csv")}, flags...)
	}
	trainArgs := func(flags ...string) []string {
		return append([]string{"train", model, "--data", train, "--out", filepath.Join(t.TempDir(), "m")}, flags...)
	}
	serve := func(flags ...string) []string {
		return append([]string{"serve", "--model", "m=" + model}, flags...)
	}
	rejected := map[string]struct {
		args []string
		want string
	}{
		"predict --batch-size 0":          {predict("--batch-size", "0"), "--batch-size must be at least 1"},
		"predict --workers -1":            {predict("--workers", "-1"), "--workers must be 0 (automatic) or more"},
		"predict --top-k -1":              {predict("--top-k", "-1"), "--top-k must be 0 (every class) or more"},
		"evaluate --batch-size 0":         {[]string{"evaluate", model, "--data", train, "--batch-size", "0"}, "--batch-size must be at least 1"},
		"train --epochs 0":                {trainArgs("--epochs", "0"), "--epochs must be at least 1"},
		"train --batch-size 0":            {trainArgs("--batch-size", "0"), "--batch-size must be at least 1"},
		"train --memory-budget 0":         {trainArgs("--memory-budget", "0"), `--memory-budget "0": want a size above 0`},
		"train --memory-budget lots":      {trainArgs("--memory-budget", "lots"), `--memory-budget "lots": want a size above 0`},
		"train --early-stopping-patience": {trainArgs("--early-stopping-patience", "-1"), "--early-stopping-patience must be 0 (never stop early) or more"},
		"train --checkpoint-every -1":     {trainArgs("--checkpoint-every", "-1"), "--checkpoint-every must be 0 (no checkpoints) or more"},
		"train --validation-split 1":      {trainArgs("--validation-split", "1"), "--validation-split must be at least 0 and below 1"},
		"train --learning-rate -1":        {trainArgs("--learning-rate", "-1"), "--learning-rate must be 0 (keep the model's) or more"},
		"serve --max-batch-size 0":        {serve("--max-batch-size", "0"), "--max-batch-size must be at least 1"},
		"serve --num-batch-threads 0":     {serve("--num-batch-threads", "0"), "--num-batch-threads must be at least 1"},
		"serve --max-enqueued 0":          {serve("--max-enqueued", "0"), "--max-enqueued must be at least 1"},
		"serve --max-body-bytes 0":        {serve("--max-body-bytes", "0"), "--max-body-bytes must be at least 1"},
		"serve --request-timeout 0":       {serve("--request-timeout", "0s"), "--request-timeout must be longer than 0"},
		"serve --batch-timeout -1s":       {serve("--batch-timeout", "-1s"), "--batch-timeout must be 0 (no waiting) or longer"},
		"serve --poll-interval -1s":       {serve("--poll-interval", "-1s"), "--poll-interval must be 0 (never poll) or longer"},
		"serve --rest-port 70000":         {serve("--rest-port", "70000"), "--rest-port must be 0 (any free port) to 65535"},
		"serve --batching-parameters-file with --max-batch-size": {serve("--batching-parameters-file", filepath.Join(testdata, "serving", "batching_config.txt"), "--max-batch-size", "8"),
			"--batching-parameters-file and --max-batch-size both set how requests are batched"},
		"serve --model-config-poll without --model-config": {serve("--model-config-poll", "5s"), "--model-config-poll needs --model-config"},
	}
	for name, tc := range rejected {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
	accepted := map[string][]string{
		"predict --workers 0 --top-k 0": predict("--workers", "0", "--top-k", "0"),
		"predict --batch-size 1":        predict("--batch-size", "1"),
		"predict --verbose":             predict("--verbose"),
	}
	for name, args := range accepted {
		t.Run(name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, "", args...); code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
		})
	}
}
