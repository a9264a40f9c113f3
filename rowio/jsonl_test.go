package rowio_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
)

func readAllJSONL(tb testing.TB, input string, dim int) ([]rowio.Row, error) {
	tb.Helper()
	r, err := rowio.NewJSONLReader(strings.NewReader(input), "in.jsonl", rowio.JSONLOptions{Dim: dim})
	if err != nil {
		tb.Fatal(err)
	}
	var rows []rowio.Row
	for {
		var row rowio.Row
		err := r.Read(&row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

func TestJSONLReader(t *testing.T) {
	type want struct {
		line   int
		id     string
		feats  []float32
		labels []string
	}
	tests := map[string]struct {
		input string
		want  []want
	}{
		"dense": {input: `{"id": "a1", "x": [0, 1, 0.5]}` + "\n" + `{"x": [-2, 1e-3, 3E2]}` + "\n",
			want: []want{{1, "a1", []float32{0, 1, 0.5}, nil}, {2, "", []float32{-2, 0.001, 300}, nil}}},
		"sparse": {input: `{"id": "s", "indices": [2, 0], "values": [0.5, -1]}`,
			want: []want{{1, "s", []float32{-1, 0, 0.5}, nil}}},
		"values omitted": {input: `{"indices": [1, 2]}`,
			want: []want{{1, "", []float32{0, 1, 1}, nil}}},
		"no indices": {input: `{"indices": [], "values": []}`,
			want: []want{{1, "", []float32{0, 0, 0}, nil}}},
		"numeric ids keep their text": {input: `{"id": 17, "x": [1, 2, 3]}` + "\n" + `{"id": -1.50e3, "indices": [0]}`,
			want: []want{{1, "17", []float32{1, 2, 3}, nil}, {2, "-1.50e3", []float32{1, 0, 0}, nil}}},
		"escaped id": {input: `{"id": "caf\u00e9 \"x\"", "x": [1, 2, 3]}`,
			want: []want{{1, `café "x"`, []float32{1, 2, 3}, nil}}},
		"labels": {input: `{"label": "cat", "x": [1, 2, 3]}
{"label": 3, "x": [1, 2, 3]}
{"labels": ["a", "b"], "x": [1, 2, 3]}
{"labels": [1, 4.0], "indices": [1]}
{"labels": [], "indices": [1]}
{"label": null, "labels": ["n"], "indices": [1]}
`,
			want: []want{
				{1, "", []float32{1, 2, 3}, []string{"cat"}},
				{2, "", []float32{1, 2, 3}, []string{"3"}},
				{3, "", []float32{1, 2, 3}, []string{"a", "b"}},
				{4, "", []float32{0, 1, 0}, []string{"1", "4.0"}},
				{5, "", []float32{0, 1, 0}, nil},
				{6, "", []float32{0, 1, 0}, []string{"n"}},
			}},
		"blank lines, CRLF, BOM": {input: "\ufeff{\"x\": [1, 2, 3]}\r\n\r\n  \t\r\n{\"id\": \"b\", \"indices\": [2]}\r\n\n",
			want: []want{{1, "", []float32{1, 2, 3}, nil}, {4, "b", []float32{0, 0, 1}, nil}}},
		"unknown keys and nulls ignored": {input: `{"X": 1, "weight": [1, "a"], "id": null, "values": null, "x": [1, 2, 3]}`,
			want: []want{{1, "", []float32{1, 2, 3}, nil}}},
		"features win over text": {input: `{"text": "hello", "x": [1, 2, 3]}`,
			want: []want{{1, "", []float32{1, 2, 3}, nil}}},
		"out of float32 range": {input: `{"x": [1e39, -1e400, 1e-50]}`,
			want: []want{{1, "", []float32{float32(math.Inf(1)), float32(math.Inf(-1)), 0}, nil}}},
		"duplicate index, last wins": {input: `{"indices": [1, 1], "values": [2, 3]}`,
			want: []want{{1, "", []float32{0, 3, 0}, nil}}},
		"empty":            {input: ""},
		"only blank lines": {input: "\n\r\n \n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rows, err := readAllJSONL(t, tc.input, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d", len(rows), len(tc.want))
			}
			for i, r := range rows {
				w := tc.want[i]
				if r.Line != w.line || r.ID != w.id || !slices.Equal(r.Features, w.feats) || !slices.Equal(r.Labels, w.labels) {
					t.Errorf("row %d: line %d id %q features %v labels %q, want %d %q %v %q",
						i, r.Line, r.ID, r.Features, r.Labels, w.line, w.id, w.feats, w.labels)
				}
			}
		})
	}
}

func TestJSONLReaderErrors(t *testing.T) {
	tests := map[string]struct {
		input     string
		wantErr   error
		wantLine  int
		wantField string
	}{
		"text row":                {input: `{"x": [1, 2, 3]}` + "\n" + `{"id": "t", "text": "some words"}`, wantErr: rowio.ErrUnsupported, wantLine: 2, wantField: "text"},
		"invalid JSON":            {input: "\n" + `{"x": [1, 2, 3]`, wantErr: rowio.ErrFormat, wantLine: 2},
		"trailing data":           {input: `{"x": [1, 2, 3]} {}`, wantErr: rowio.ErrFormat, wantLine: 1},
		"not JSON":                {input: `x: 1, 2, 3`, wantErr: rowio.ErrFormat, wantLine: 1},
		"array line":              {input: `[1, 2, 3]`, wantErr: rowio.ErrFormat, wantLine: 1},
		"string line":             {input: `"a"`, wantErr: rowio.ErrFormat, wantLine: 1},
		"null line":               {input: `null`, wantErr: rowio.ErrFormat, wantLine: 1},
		"both x and indices":      {input: `{"x": [1, 2, 3], "indices": [0]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"neither x nor indices":   {input: `{"id": "a"}`, wantErr: rowio.ErrFormat, wantLine: 1},
		"x and values":            {input: `{"x": [1, 2, 3], "values": [1]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "values"},
		"dense too short":         {input: `{"x": [1, 2]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"dense too long":          {input: `{"x": [1, 2, 3, 4]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"x not an array":          {input: `{"x": 1}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"string in x":             {input: `{"x": [1, "2", 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"null in x":               {input: `{"x": [1, null, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "x"},
		"index out of range":      {input: `{"indices": [3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"index negative":          {input: `{"indices": [-1]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"index huge":              {input: `{"indices": [99999999999999999999999]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"index fractional":        {input: `{"indices": [1.5]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"index with exponent":     {input: `{"indices": [1e0]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"index a string":          {input: `{"indices": ["1"]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"indices not an array":    {input: `{"indices": {"1": 2}}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "indices"},
		"fewer values":            {input: `{"indices": [0, 1], "values": [1]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "values"},
		"more values":             {input: `{"indices": [0], "values": [1, 2]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "values"},
		"string in values":        {input: `{"indices": [0], "values": ["a"]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "values"},
		"id an object":            {input: `{"id": {}, "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "id"},
		"id a boolean":            {input: `{"id": true, "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "id"},
		"label an array":          {input: `{"label": ["a"], "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "label"},
		"labels a string":         {input: `{"labels": "a", "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "labels"},
		"labels holding null":     {input: `{"labels": ["a", null], "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "labels"},
		"both label and labels":   {input: `{"label": "a", "labels": ["b"], "x": [1, 2, 3]}`, wantErr: rowio.ErrFormat, wantLine: 1, wantField: "labels"},
		"error after blank lines": {input: "\n\n\r\n" + `{"x": [1]}`, wantErr: rowio.ErrFormat, wantLine: 4, wantField: "x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := readAllJSONL(t, tc.input, 3)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			var pe *rowio.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Path != "in.jsonl" || pe.Line != tc.wantLine || pe.Field != tc.wantField {
				t.Fatalf("error %v at %s:%d field %q, want in.jsonl:%d field %q", err, pe.Path, pe.Line, pe.Field, tc.wantLine, tc.wantField)
			}
		})
	}
}

func TestJSONLReaderNeedsDim(t *testing.T) {
	for _, dim := range []int{0, -1} {
		if _, err := rowio.NewJSONLReader(strings.NewReader(""), "-", rowio.JSONLOptions{Dim: dim}); err == nil {
			t.Errorf("Dim %d: want an error", dim)
		}
	}
}

// TestJSONLContinueAfterError reads past bad lines, as --skip-bad-rows does,
// reusing one Row throughout.
func TestJSONLContinueAfterError(t *testing.T) {
	input := strings.Join([]string{
		`{"id": "a", "indices": [0, 1, 2], "values": [7, 8, 9]}`,
		`{"id": "b", "x": [1, 2`,
		`{"id": "c", "indices": [1]}`,
		`{"id": "d", "text": "words"}`,
		``,
		`{"id": "e", "x": [1, 2, 3, 4]}`,
		`{"id": "f", "indices": [0], "labels": ["l"]}`,
	}, "\n")
	r, err := rowio.NewJSONLReader(strings.NewReader(input), "in.jsonl", rowio.JSONLOptions{Dim: 3})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		line   int
		id     string
		feats  []float32
		errIs  error
		labels []string
	}
	want := []result{
		{line: 1, id: "a", feats: []float32{7, 8, 9}},
		{line: 2, errIs: rowio.ErrFormat},
		{line: 3, id: "c", feats: []float32{0, 1, 0}},
		{line: 4, errIs: rowio.ErrUnsupported},
		{line: 6, errIs: rowio.ErrFormat},
		{line: 7, id: "f", feats: []float32{1, 0, 0}, labels: []string{"l"}},
	}
	var row rowio.Row
	for i, w := range want {
		err := r.Read(&row)
		if w.errIs != nil {
			var pe *rowio.ParseError
			if !errors.Is(err, w.errIs) || !errors.As(err, &pe) || pe.Line != w.line {
				t.Fatalf("read %d: error %v, want %v at line %d", i, err, w.errIs, w.line)
			}
			continue
		}
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if row.Line != w.line || row.ID != w.id || !slices.Equal(row.Features, w.feats) || !slices.Equal(row.Labels, w.labels) {
			t.Fatalf("read %d: %+v, want line %d id %q features %v labels %q", i, row, w.line, w.id, w.feats, w.labels)
		}
	}
	for range 2 {
		if err := r.Read(&row); err != io.EOF {
			t.Fatalf("Read at end = %v, want io.EOF", err)
		}
	}
}

// TestJSONLTextData reads the raw-text test set: every row is reported as
// unsupported at its own line, and the reader gets to the end.
func TestJSONLTextData(t *testing.T) {
	f, err := os.Open("../testdata/data/fortunes/test.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := rowio.NewJSONLReader(f, f.Name(), rowio.JSONLOptions{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	var row rowio.Row
	n := 0
	for {
		err := r.Read(&row)
		if err == io.EOF {
			break
		}
		n++
		var pe *rowio.ParseError
		if !errors.Is(err, rowio.ErrUnsupported) || !errors.As(err, &pe) || pe.Line != n || pe.Path != f.Name() || pe.Field != "text" {
			t.Fatalf("row %d: error %v, want ErrUnsupported at %s:%d", n, err, f.Name(), n)
		}
	}
	if n != 1255 {
		t.Fatalf("%d rows, want 1255", n)
	}
}

// TestJSONLMatchesLibSVM rewrites the testdata libsvm features as sparse
// JSONL, text to text, and reads both.
func TestJSONLMatchesLibSVM(t *testing.T) {
	const path = "../testdata/features/debtags/test.libsvm"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		fields := strings.Fields(s.Text())
		var idx, val []string
		for _, f := range fields[1:] {
			i, v, _ := strings.Cut(f, ":")
			idx, val = append(idx, i), append(val, v)
		}
		fmt.Fprintf(&js, `{"labels": [%s], "indices": [%s], "values": [%s]}`+"\n",
			fields[0], strings.Join(idx, ", "), strings.Join(val, ", "))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	sv, err := rowio.NewLibSVMReader(bytes.NewReader(data), path, rowio.LibSVMOptions{Dim: 256, Base: rowio.IndexZero})
	if err != nil {
		t.Fatal(err)
	}
	jr, err := rowio.NewJSONLReader(&js, "test.jsonl", rowio.JSONLOptions{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	var a, b rowio.Row
	n := 0
	for {
		errA, errB := sv.Read(&a), jr.Read(&b)
		if errA == io.EOF && errB == io.EOF {
			break
		}
		if errA != nil || errB != nil {
			t.Fatalf("row %d: libsvm %v, jsonl %v", n, errA, errB)
		}
		if a.Line != b.Line || !slices.Equal(a.Features, b.Features) || !slices.Equal(a.Labels, b.Labels) {
			t.Fatalf("row %d differs: libsvm line %d labels %q, jsonl line %d labels %q", n, a.Line, a.Labels, b.Line, b.Labels)
		}
		n++
	}
	if n != 456 {
		t.Fatalf("%d rows, want 456", n)
	}
}

// TestJSONLMatchesCSV rewrites the testdata CSV features as dense JSONL with
// ids, text to text, and reads both.
func TestJSONLMatchesCSV(t *testing.T) {
	const path = "../testdata/features/fortunes/test.csv"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines[1:] {
		id, x, _ := strings.Cut(l, ",")
		fmt.Fprintf(&js, `{"x": [%s], "id": %q}`+"\n", x, id)
	}
	tr := rowio.NewTableReader(bytes.NewReader(data), path, rowio.TableOptions{})
	jr, err := rowio.NewJSONLReader(&js, "test.jsonl", rowio.JSONLOptions{Dim: 256})
	if err != nil {
		t.Fatal(err)
	}
	var a, b rowio.Row
	n := 0
	for {
		errA, errB := tr.Read(&a), jr.Read(&b)
		if errA == io.EOF && errB == io.EOF {
			break
		}
		if errA != nil || errB != nil {
			t.Fatalf("row %d: csv %v, jsonl %v", n, errA, errB)
		}
		if a.ID != b.ID || !slices.Equal(a.Features, b.Features) {
			t.Fatalf("row %d differs: csv id %q, jsonl id %q", n, a.ID, b.ID)
		}
		n++
	}
	if n != 1255 {
		t.Fatalf("%d rows, want 1255", n)
	}
}

func FuzzJSONLReader(f *testing.F) {
	for _, s := range []string{
		"",
		"\ufeff",
		`{"id": "a1", "x": [0, 1, 0.5, 2]}`,
		`{"id": 17, "indices": [3, 1], "values": [1, 0.5]}` + "\n",
		`{"indices": [0], "labels": ["a", 4]}` + "\r\n\r\n" + `{"label": 3, "x": [1e39, -1e400, 0, 0]}`,
		`{"text": "words"}`,
		`{"x": [1, 2]}` + "\n" + `{"indices": [9]}` + "\n" + `{"indices": [1.5]}`,
		`{"x": [1, 2, 3, 4], "indices": []}`,
		`[1, 2]` + "\n" + `null` + "\n" + `{"x": `,
		`{"indices": [99999999999999999999], "values": ["a"]}`,
		`{"\u0078": [1, 2, 3, 4], "X": 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path, dim = "fuzz.jsonl", 4
		r, err := rowio.NewJSONLReader(bytes.NewReader(data), path, rowio.JSONLOptions{Dim: dim})
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimPrefix(data, []byte("\ufeff")), []byte("\n"))
		lastLine := 0
		var row rowio.Row
		for range len(lines) + 1 {
			err := r.Read(&row)
			if err == io.EOF {
				if err := r.Read(&row); err != io.EOF {
					t.Fatalf("Read after io.EOF = %v", err)
				}
				return
			}
			var pe *rowio.ParseError
			line := row.Line
			if err != nil {
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T) is not a *ParseError", err, err)
				}
				if !errors.Is(err, rowio.ErrFormat) && !errors.Is(err, rowio.ErrUnsupported) {
					t.Fatalf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
				}
				line = pe.Line
			}
			if pe != nil && pe.Path != path || line <= lastLine || line > len(lines) {
				t.Fatalf("line %d (error %v) after line %d, input of %d lines", line, err, lastLine, len(lines))
			}
			lastLine = line
			if err != nil {
				continue
			}
			if len(row.Features) != dim {
				t.Fatalf("line %d: %d features, want %d", line, len(row.Features), dim)
			}
			if text := bytes.Trim(lines[line-1], " \t\r\n"); !json.Valid(text) || text[0] != '{' {
				t.Fatalf("line %d: read a row from %q, not a JSON object", line, text)
			}
		}
		t.Fatalf("no io.EOF after %d reads of %d lines", len(lines)+1, len(lines))
	})
}

func ExampleNewJSONLReader() {
	in := strings.NewReader(`{"id": "a", "x": [0.5, 0, 1], "label": "cat"}
{"id": 7, "indices": [2], "labels": ["dog", "pet"]}
{"id": "c", "x": [1, 2]}
{"id": "d", "text": "a raw sentence"}
`)
	r, err := rowio.NewJSONLReader(in, "pets.jsonl", rowio.JSONLOptions{Dim: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	var row rowio.Row
	for {
		err := r.Read(&row)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("skipping:", err)
			continue
		}
		fmt.Println(row.Line, row.ID, row.Features, row.Labels)
	}
	// Output:
	// 1 a [0.5 0 1] [cat]
	// 2 7 [0 0 1] [dog pet]
	// skipping: pets.jsonl:3: field x: 2 values, want the model's 3 features: malformed input
	// skipping: pets.jsonl:4: field text: raw text needs the model's vectorizer, and this model has none (export it with kerasgo export --vectorizer); give features as "x" or "indices": unsupported input
}
