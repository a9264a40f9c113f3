package textvec

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const goldenDir = "../testdata/textvec"

var goldenConfigs = []string{"multi_hot_1", "multi_hot_2", "count_1", "count_2", "tf_idf_1", "tf_idf_2"}

// corpus returns the documents the goldens were computed on, in their order:
// fortunes train, fortunes test, then extra.jsonl.gz.
func corpus(tb testing.TB) []string {
	tb.Helper()
	var docs []string
	for _, name := range []string{"train", "test"} {
		f, err := os.Open(filepath.Join("../testdata/data/fortunes", name+".jsonl"))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var rec struct{ Text string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				tb.Fatal(err)
			}
			docs = append(docs, rec.Text)
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		f.Close()
	}
	f, err := os.Open(filepath.Join(goldenDir, "extra.jsonl.gz"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	for {
		var rec struct {
			Text *string
			Hex  *string
		}
		if err := dec.Decode(&rec); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatal(err)
		}
		switch {
		case rec.Text != nil:
			docs = append(docs, *rec.Text)
		case rec.Hex != nil:
			b, err := hex.DecodeString(*rec.Hex)
			if err != nil {
				tb.Fatal(err)
			}
			docs = append(docs, string(b))
		default:
			tb.Fatal("extra.jsonl.gz: record without text or hex")
		}
	}
	return docs
}

// csr is a golden output: row r has indices[indptr[r]:indptr[r+1]].
type csr struct {
	indptr  []int32
	indices []int16
	values  []float32
}

var npyHeader = regexp.MustCompile(`'descr':\s*'([^']+)'.*'shape':\s*\((\d+),?\)`)

// readNpy decodes a one-dimensional little-endian .npy array of dtype want
// into dst (a pointer to a slice of the matching Go type).
func readNpy(b []byte, want string, dst any) error {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return errors.New("not an npy file")
	}
	var hlen, off int
	if b[6] == 1 {
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	} else {
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	m := npyHeader.FindSubmatch(b[off : off+hlen])
	if m == nil || string(m[1]) != want {
		return fmt.Errorf("npy header %q, want dtype %s", b[off:off+hlen], want)
	}
	n, _ := strconv.Atoi(string(m[2]))
	data := b[off+hlen:]
	switch d := dst.(type) {
	case *[]int32:
		*d = make([]int32, n)
	case *[]int16:
		*d = make([]int16, n)
	case *[]float32:
		*d = make([]float32, n)
	}
	return binary.Read(bytes.NewReader(data), binary.LittleEndian, dst)
}

func readCSR(tb testing.TB, path string) csr {
	tb.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	var c csr
	arrays := map[string]struct {
		dtype string
		dst   any
	}{
		"indptr.npy":  {"<i4", &c.indptr},
		"indices.npy": {"<i2", &c.indices},
		"values.npy":  {"<f4", &c.values},
	}
	for _, f := range zr.File {
		a, ok := arrays[f.Name]
		if !ok {
			continue
		}
		r, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if err := readNpy(b, a.dtype, a.dst); err != nil {
			tb.Fatalf("%s/%s: %v", path, f.Name, err)
		}
	}
	if len(c.indptr) == 0 || len(c.indices) != len(c.values) || int(c.indptr[len(c.indptr)-1]) != len(c.indices) {
		tb.Fatalf("%s: inconsistent CSR arrays", path)
	}
	return c
}

// TestKerasGolden checks every corpus document against the Keras output:
// exactly for multi_hot and count, within 1e-6 for tf_idf.
func TestKerasGolden(t *testing.T) {
	docs := corpus(t)
	for _, name := range goldenConfigs {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig(filepath.Join(goldenDir, name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			v, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := readCSR(t, filepath.Join(goldenDir, name+".npz"))
			if got := len(want.indptr) - 1; got != len(docs) {
				t.Fatalf("golden has %d rows, corpus %d documents", got, len(docs))
			}
			tol := float32(0)
			if cfg.OutputMode == TFIDF {
				tol = 1e-6
			}
			var (
				idx     []int32
				val     []float32
				dense   []float32
				bad     int
				inexact int
			)
			for r, doc := range docs {
				lo, hi := want.indptr[r], want.indptr[r+1]
				wi := make([]int32, 0, hi-lo)
				for _, i := range want.indices[lo:hi] {
					wi = append(wi, int32(i))
				}
				wv := want.values[lo:hi]
				idx, val = v.VectorizeSparse(doc, idx, val)
				ok := slices.Equal(idx, wi)
				for k := 0; ok && k < len(val); k++ {
					d := float32(math.Abs(float64(val[k] - wv[k])))
					ok = d <= tol
					if d != 0 {
						inexact++
					}
				}
				dense = v.Vectorize(doc, dense)
				for k, i := range wi {
					if dense[i] != val[min(k, len(val)-1)] {
						ok = false
					}
				}
				nz := 0
				for _, x := range dense {
					if x != 0 {
						nz++
					}
				}
				ok = ok && nz == len(wi) && len(dense) == v.Width()
				if !ok {
					bad++
					if bad <= 5 {
						t.Errorf("document %d %q:\n got %v %v\nwant %v %v", r, trunc(doc), idx, val, wi, wv)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d documents differ from Keras", bad, len(docs))
			}
			t.Logf("%d documents, %d values not bit-identical", len(docs), inexact)
		})
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func testConfig(mode string, ngrams int) Config {
	c := Config{
		Vocabulary:  []string{OOVToken, "the", "école", "a", "b", "the cat", "cat", "ab"},
		OutputMode:  mode,
		Ngrams:      ngrams,
		Standardize: LowerAndStripPunctuation,
		Split:       Whitespace,
	}
	if mode == TFIDF {
		c.IDF = []float32{0.5, 0.25, 2, 1, 1, 3, 1.5, 4}
	}
	return c
}

func TestVectorize(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		text string
		want []float32
	}{
		"empty":             {testConfig(Count, 0), "", []float32{0, 0, 0, 0, 0, 0, 0, 0}},
		"only whitespace":   {testConfig(Count, 0), " \t\n\v\f\r", []float32{0, 0, 0, 0, 0, 0, 0, 0}},
		"only punctuation":  {testConfig(Count, 0), "...!?", []float32{0, 0, 0, 0, 0, 0, 0, 0}},
		"ascii lower only":  {testConfig(Count, 0), "THE École ÉCOLE", []float32{2, 1, 0, 0, 0, 0, 0, 0}},
		"punct deleted":     {testConfig(Count, 0), "a.b a,b (the)", []float32{0, 1, 0, 0, 0, 0, 0, 2}},
		"nbsp not space":    {testConfig(Count, 0), "a\u00a0b a\tb", []float32{1, 0, 0, 1, 1, 0, 0, 0}},
		"oov counted":       {testConfig(Count, 0), "dog dog the", []float32{2, 1, 0, 0, 0, 0, 0, 0}},
		"multi hot":         {testConfig(MultiHot, 0), "dog dog the the", []float32{1, 1, 0, 0, 0, 0, 0, 0}},
		"bigrams":           {testConfig(Count, 2), "The  cat", []float32{0, 1, 0, 0, 0, 1, 1, 0}},
		"bigram oov":        {testConfig(Count, 2), "cat the", []float32{1, 1, 0, 0, 0, 0, 1, 0}},
		"tf idf":            {testConfig(TFIDF, 2), "the cat the x", []float32{3 * 0.5, 2 * 0.25, 0, 0, 0, 3, 1.5, 0}},
		"no standardize":    {Config{Vocabulary: []string{OOVToken, "A.", "a"}, OutputMode: Count, Split: Whitespace}, "A. a a.", []float32{1, 1, 1}},
		"lower only":        {Config{Vocabulary: []string{OOVToken, "a.", "a"}, OutputMode: Count, Split: Whitespace, Standardize: Lower}, "A. a", []float32{0, 1, 1}},
		"strip punctuation": {Config{Vocabulary: []string{OOVToken, "A", "a"}, OutputMode: Count, Split: Whitespace, Standardize: StripPunctuation}, "A. a", []float32{0, 1, 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := v.Vectorize(tc.text, []float32{9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
			if !slices.Equal(got, tc.want) {
				t.Errorf("Vectorize(%q) = %v, want %v", tc.text, got, tc.want)
			}
			idx, val := v.VectorizeSparse(tc.text, nil, nil)
			var wi []int32
			var wv []float32
			for i, x := range tc.want {
				if x != 0 {
					wi, wv = append(wi, int32(i)), append(wv, x)
				}
			}
			if !slices.Equal(idx, wi) || !slices.Equal(val, wv) {
				t.Errorf("VectorizeSparse(%q) = %v %v, want %v %v", tc.text, idx, val, wi, wv)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := map[string]func(*Config){
		"mode":         func(c *Config) { c.OutputMode = "int" },
		"split":        func(c *Config) { c.Split = "character" },
		"standardize":  func(c *Config) { c.Standardize = "upper" },
		"no oov":       func(c *Config) { c.Vocabulary = []string{"the"} },
		"duplicate":    func(c *Config) { c.Vocabulary = append(c.Vocabulary, "the") },
		"empty token":  func(c *Config) { c.Vocabulary = append(c.Vocabulary, "") },
		"idf length":   func(c *Config) { c.OutputMode, c.IDF = TFIDF, []float32{1} },
		"idf in count": func(c *Config) { c.IDF = make([]float32, len(c.Vocabulary)) },
		"ngrams":       func(c *Config) { c.Ngrams = -1 },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := testConfig(Count, 0)
			mutate(&c)
			if _, err := New(c); !errors.Is(err, ErrConfig) {
				t.Errorf("New: got %v, want ErrConfig", err)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		json    string
		wantErr bool
		ngrams  int
	}{
		"ngrams null": {`{"vocabulary":["[UNK]","a"],"output_mode":"count","ngrams":null,"standardize":null,"split":"whitespace"}`, false, 0},
		"ngrams 2":    {`{"vocabulary":["[UNK]","a"],"output_mode":"count","ngrams":2,"split":"whitespace"}`, false, 2},
		"ngrams list": {`{"vocabulary":["[UNK]","a"],"output_mode":"count","ngrams":[1,3],"split":"whitespace"}`, true, 0},
		"bad json":    {`{"vocabulary":`, true, 0},
		"bad idf":     {`{"vocabulary":["[UNK]","a"],"output_mode":"tf_idf","idf":[1],"split":"whitespace"}`, true, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if err := os.WriteFile(p, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("LoadConfig: err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && c.Ngrams != tc.ngrams {
				t.Errorf("Ngrams = %d, want %d", c.Ngrams, tc.ngrams)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}

func FuzzVectorize(f *testing.F) {
	for _, s := range []string{"", "   ", "ÉCOLE École école", "a.b,c!d", "tab\tsep", "nbsp\u00a0sep", "emoji 🙂 x", "İstanbul ΣΑΣ straße", "the the of the", "a\xffb"} {
		f.Add(s)
	}
	var vs []*Vectorizer
	for _, name := range goldenConfigs {
		cfg, err := LoadConfig(filepath.Join(goldenDir, name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		v, err := New(cfg)
		if err != nil {
			f.Fatal(err)
		}
		vs = append(vs, v)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, v := range vs {
			row := v.Vectorize(text, nil)
			if len(row) != v.Width() {
				t.Fatalf("width %d, want %d", len(row), v.Width())
			}
			idx, val := v.VectorizeSparse(text, nil, nil)
			if !slices.IsSorted(idx) || len(idx) != len(val) {
				t.Fatalf("sparse indices %v not sorted or %d values", idx, len(val))
			}
			nz := 0
			for i, x := range row {
				if x < 0 || math.IsNaN(float64(x)) {
					t.Fatalf("row[%d] = %v", i, x)
				}
				if x != 0 {
					nz++
				}
			}
			if nz != len(idx) {
				t.Fatalf("dense has %d non-zeros, sparse %d", nz, len(idx))
			}
			for k, i := range idx {
				if row[i] != val[k] {
					t.Fatalf("dense[%d] = %v, sparse %v", i, row[i], val[k])
				}
			}
		}
	})
}

func BenchmarkVectorize(b *testing.B) {
	docs := corpus(b)
	for _, name := range goldenConfigs {
		b.Run(name, func(b *testing.B) {
			cfg, err := LoadConfig(filepath.Join(goldenDir, name+".json"))
			if err != nil {
				b.Fatal(err)
			}
			v, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var (
				idx []int32
				val []float32
				n   int
			)
			b.ReportAllocs()
			for b.Loop() {
				idx, val = v.VectorizeSparse(docs[n%len(docs)], idx, val)
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

func ExampleVectorizer_Vectorize() {
	v, err := New(Config{
		Vocabulary:  []string{"[UNK]", "the", "cat", "the cat"},
		OutputMode:  "count",
		Ngrams:      2,
		Standardize: "lower_and_strip_punctuation",
		Split:       "whitespace",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Vectorize("The cat saw the CAT!", nil))
	idx, val := v.VectorizeSparse("", nil, nil)
	fmt.Println(len(idx), len(val))
	// Output:
	// [3 2 2 2]
	// 0 0
}
