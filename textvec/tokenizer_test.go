package textvec

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

const tokGoldenDir = "../testdata/tokenizer"

var tokConfigs = []string{"default", "num_words_300", "oov_300", "no_lower", "char_100", "custom_split"}

var tokEdge = []string{
	"",
	"   ",
	"ÉCOLE École",
	"İstanbul ΣΑΣ straße",
	"a.b,c!d",
	"tab\tsep",
	"émoji 🙂",
	"ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ' aΣb ΑΣ\u0301 ΑΣ:Α",
	"it's don't 'quoted' ''",
	"the the the THE The",
	"<OOV> oov zzoov",
	"ǅ ǈ ǋ ǲ ẞ Ω K Å",
}

func readGz(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// tokCorpus returns the documents of make_tokenizer_golden.py, in order:
// fortunes test, the text records of extra.jsonl.gz, then tokEdge.
func tokCorpus(tb testing.TB) []string {
	tb.Helper()
	var docs []string
	f, err := os.Open("../testdata/data/fortunes/test.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
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
	dec := json.NewDecoder(bytes.NewReader(readGz(tb, filepath.Join(goldenDir, "extra.jsonl.gz"))))
	for {
		var rec struct{ Text *string }
		if err := dec.Decode(&rec); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatal(err)
		}
		if rec.Text != nil {
			docs = append(docs, *rec.Text)
		}
	}
	return append(docs, tokEdge...)
}

func loadTok(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	tok, err := ParseTokenizerJSON(readGz(tb, filepath.Join(tokGoldenDir, name+".tokenizer.json.gz")))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func withMode(tb testing.TB, t *Tokenizer, mode string) *Tokenizer {
	tb.Helper()
	u, err := t.WithMode(mode)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

type tokGolden struct {
	Rows  [][2][]int32 `json:"rows"`
	TFIDF [][3]float64 `json:"tfidf"`
	Freq  [][3]float64 `json:"freq"`
}

func TestTokenizerKerasGolden(t *testing.T) {
	docs := tokCorpus(t)
	if len(docs) < 2000 {
		t.Fatalf("corpus has %d documents, want >= 2000", len(docs))
	}
	for _, name := range tokConfigs {
		t.Run(name, func(t *testing.T) {
			var g tokGolden
			if err := json.Unmarshal(readGz(t, filepath.Join(tokGoldenDir, name+".rows.json.gz")), &g); err != nil {
				t.Fatal(err)
			}
			if len(g.Rows) != len(docs) {
				t.Fatalf("golden has %d rows, corpus %d documents", len(g.Rows), len(docs))
			}
			type key struct{ a, b int32 }
			tfidf, freq := map[key]float64{}, map[key]float64{}
			for _, e := range g.TFIDF {
				tfidf[key{int32(e[0]), int32(e[1])}] = e[2]
			}
			for _, e := range g.Freq {
				freq[key{int32(e[0]), int32(e[1])}] = e[2]
			}
			base := loadTok(t, name)
			toks := map[string]*Tokenizer{}
			for _, m := range []string{TokBinary, TokCount, TokFreq, TokTFIDF} {
				toks[m] = withMode(t, base, m)
			}
			var row []float64
			var maxDiff = map[string]float64{}
			inexact := map[string]int{}
			fails := 0
			for d, doc := range docs {
				idx, counts := g.Rows[d][0], g.Rows[d][1]
				n := int32(0)
				for _, c := range counts {
					n += c
				}
				for _, m := range []string{TokBinary, TokCount, TokFreq, TokTFIDF} {
					want := make([]float64, base.Width())
					for k, j := range idx {
						c := counts[k]
						switch m {
						case TokBinary:
							want[j] = 1
						case TokCount:
							want[j] = float64(c)
						case TokFreq:
							want[j] = freq[key{c, n}]
						case TokTFIDF:
							want[j] = tfidf[key{j, c}]
						}
					}
					row = toks[m].Matrix(doc, row)
					if len(row) != len(want) {
						t.Fatalf("doc %d %s: width %d, want %d", d, m, len(row), len(want))
					}
					for j := range row {
						diff := math.Abs(row[j] - want[j])
						tol := 0.0
						if m == TokFreq || m == TokTFIDF {
							tol = 1e-12
						}
						if row[j] != want[j] {
							inexact[m]++
							maxDiff[m] = max(maxDiff[m], diff)
						}
						if !(diff <= tol) || (want[j] == 0) != (row[j] == 0) { // NaN fails too
							if fails++; fails <= 10 {
								t.Errorf("doc %d %q %s col %d: got %v, want %v", d, trunc(doc), m, j, row[j], want[j])
							}
						}
					}
				}
			}
			for m, c := range inexact {
				t.Logf("%s: %d entries not bit-exact, max |diff| %g", m, c, maxDiff[m])
			}
		})
	}
}

func TestTokenizerSparseMatchesMatrix(t *testing.T) {
	docs := tokCorpus(t)
	for _, name := range tokConfigs {
		for _, m := range []string{TokBinary, TokCount, TokFreq, TokTFIDF} {
			tok := withMode(t, loadTok(t, name), m)
			var row []float64
			var idx []int32
			var val []float32
			for d, doc := range docs {
				row = tok.Matrix(doc, row)
				idx, val = tok.VectorizeSparse(doc, idx, val)
				k := 0
				for j, v := range row {
					if v == 0 {
						continue
					}
					if k >= len(idx) || idx[k] != int32(j) || val[k] != float32(v) {
						t.Fatalf("%s %s doc %d: sparse row differs from Matrix at column %d", name, m, d, j)
					}
					k++
				}
				if k != len(idx) {
					t.Fatalf("%s %s doc %d: sparse row has %d entries, Matrix %d", name, m, d, len(idx), k)
				}
			}
		}
	}
}

// TestTokenizerPythonLower checks pyLower against Python's str.lower() on
// every code point, and the Final_Sigma classes.
func TestTokenizerPythonLower(t *testing.T) {
	var g struct {
		Lower     [][2]any `json:"lower"`
		Cased     []rune   `json:"cased"`
		Ignorable []rune   `json:"ignorable"`
	}
	if err := json.Unmarshal(readGz(t, filepath.Join(tokGoldenDir, "lower.json.gz")), &g); err != nil {
		t.Fatal(err)
	}
	want := map[rune]string{}
	for _, e := range g.Lower {
		want[rune(e[0].(float64))] = e[1].(string)
	}
	cased, ign := map[rune]bool{}, map[rune]bool{}
	for _, r := range g.Cased {
		cased[r] = true
	}
	for _, r := range g.Ignorable {
		ign[r] = true
	}
	var bad []string
	for r := rune(0); r <= maxRune; r++ {
		if 0xD800 <= r && r <= 0xDFFF {
			continue
		}
		w, ok := want[r]
		if !ok {
			w = string(r)
		}
		if r == 'Σ' {
			w = "σ" // alone: not final
		}
		if got := string(pyLower(nil, string(r))); got != w {
			bad = append(bad, fmt.Sprintf("lower(%U) = %+q, Python %+q", r, got, w))
		}
		if got := isCaseIgnorable(r); got != ign[r] {
			bad = append(bad, fmt.Sprintf("isCaseIgnorable(%U) = %v, Python %v", r, got, ign[r]))
		} else if !got && isCased(r) != cased[r] {
			bad = append(bad, fmt.Sprintf("isCased(%U) = %v, Python %v", r, !cased[r], cased[r]))
		}
	}
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... %d differences in all", len(bad))
			break
		}
		t.Error(b)
	}
}

const maxRune = utf8.MaxRune

func TestTokenizerSequence(t *testing.T) {
	tok := loadTok(t, "oov_300")
	seq := tok.Sequence("The the ΣΑΣ zzzunknownzzz", nil)
	oov := tok.wordIndex["<OOV>"]
	if len(seq) != 4 || seq[0] != tok.wordIndex["the"] || seq[1] != seq[0] || seq[2] != oov || seq[3] != oov {
		t.Errorf("Sequence = %v, want [the the <OOV> <OOV>] (the=%d, <OOV>=%d)", seq, tok.wordIndex["the"], oov)
	}
	for in, want := range map[string]string{
		"İstanbul ΣΑΣ straße": "i̇stanbul σας straße",
		"ΑΣ' x":               "ας' x",
		"aΣb":                 "aσb",
		"Σ":                   "σ",
		"ΑΣ\u0301":            "ας\u0301",
		"\xffA":               "\ufffda",
	} {
		if got := string(pyLower(nil, in)); got != want {
			t.Errorf("pyLower(%+q) = %+q, want %+q", in, got, want)
		}
	}
}

func TestLoadTokenizer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok.json")
	if err := os.WriteFile(path, readGz(t, filepath.Join(tokGoldenDir, "default.tokenizer.json.gz")), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadTokenizer(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Mode() != TokBinary || tok.Width() != len(tok.wordIndex)+1 {
		t.Errorf("mode %q width %d", tok.Mode(), tok.Width())
	}
	if _, err := LoadTokenizer(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestTokenizerErrors(t *testing.T) {
	for name, js := range map[string]string{
		"class":     `{"class_name":"Other","config":{"word_index":"{\"a\":1}"}}`,
		"negative":  `{"class_name":"Tokenizer","config":{"num_words":-1,"word_index":"{\"a\":1}"}}`,
		"split":     `{"class_name":"Tokenizer","config":{"split":"","word_index":"{\"a\":1}"}}`,
		"oov":       `{"class_name":"Tokenizer","config":{"oov_token":"x","word_index":"{\"a\":1}"}}`,
		"empty":     `{"class_name":"Tokenizer","config":{"word_index":"{}"}}`,
		"noindex":   `{"class_name":"Tokenizer","config":{}}`,
		"badindex":  `{"class_name":"Tokenizer","config":{"word_index":"{\"a\":-1}"}}`,
		"docs":      `{"class_name":"Tokenizer","config":{"word_index":"{\"a\":1}","index_docs":"{\"x\":1}"}}`,
		"doc_count": `{"class_name":"Tokenizer","config":{"document_count":-2,"word_index":"{\"a\":1}"}}`,
	} {
		if _, err := ParseTokenizerJSON([]byte(js)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	if _, err := ParseTokenizerJSON([]byte(`{`)); err == nil || errors.Is(err, ErrConfig) {
		t.Errorf("bad json: err = %v", err)
	}
	tok, err := ParseTokenizerJSON([]byte(`{"class_name":"Tokenizer","config":{"word_index":"{\"a\":1}"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.WithMode(TokTFIDF); !errors.Is(err, ErrConfig) {
		t.Errorf("tfidf with document_count 0: %v", err)
	}
	if _, err := tok.WithMode("tf_idf"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown mode: %v", err)
	}
}

func FuzzTokenizer(f *testing.F) {
	for _, s := range tokEdge {
		f.Add(s)
	}
	f.Add("\xff\xfeΣ\x80a")
	var toks []*Tokenizer
	for _, name := range tokConfigs {
		base := loadTok(f, name)
		for _, m := range []string{TokBinary, TokCount, TokFreq, TokTFIDF} {
			toks = append(toks, withMode(f, base, m))
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range toks {
			row := tok.Matrix(text, nil)
			if len(row) != tok.Width() {
				t.Fatalf("width %d, want %d", len(row), tok.Width())
			}
			if row[0] != 0 && tok.wordIndex[""] == 0 {
				t.Fatalf("column 0 set")
			}
			idx, _ := tok.VectorizeSparse(text, nil, nil)
			for _, j := range idx {
				if j < 0 || int(j) >= tok.Width() {
					t.Fatalf("index %d out of [0, %d)", j, tok.Width())
				}
			}
			if !utf8.ValidString(string(pyLower(nil, text))) {
				t.Fatalf("pyLower output not valid UTF-8")
			}
		}
	})
}

func BenchmarkTokenizer(b *testing.B) {
	docs := tokCorpus(b)
	var bytes int64
	for _, d := range docs {
		bytes += int64(len(d))
	}
	for _, name := range []string{"default", "oov_300", "char_100"} {
		for _, m := range []string{TokBinary, TokTFIDF} {
			tok := withMode(b, loadTok(b, name), m)
			b.Run(name+"/"+m+"/sparse", func(b *testing.B) {
				var idx []int32
				var val []float32
				b.SetBytes(bytes / int64(len(docs)))
				for i := 0; b.Loop(); i++ {
					idx, val = tok.VectorizeSparse(docs[i%len(docs)], idx, val)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
			})
			b.Run(name+"/"+m+"/dense", func(b *testing.B) {
				var row []float64
				for i := 0; b.Loop(); i++ {
					row = tok.Matrix(docs[i%len(docs)], row)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
			})
		}
	}
}

func ExampleTokenizer_Matrix() {
	tok, err := ParseTokenizerJSON([]byte(`{"class_name": "Tokenizer", "config": {"num_words": null,
		"filters": "!\"#$%&()*+,-./:;<=>?@[\\]^_` + "`" + `{|}~\t\n", "lower": true, "split": " ",
		"char_level": false, "oov_token": null, "document_count": 2,
		"word_index": "{\"the\": 1, \"cat\": 2, \"sat\": 3}",
		"index_docs": "{\"1\": 2, \"2\": 1, \"3\": 1}"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	count, _ := tok.WithMode(TokCount)
	fmt.Println(count.Matrix("The cat, the CAT!", nil))
	// Output: [0 2 2 0]
}
