// Package textvec reproduces Keras 3's keras.layers.TextVectorization (with
// the TensorFlow backend) in pure Go, for the bag-of-words output modes
// "multi_hot", "count" and "tf_idf".
//
// The pipeline matches the layer's call step by step:
//
//   - standardize "lower" lowercases ASCII letters only (tf.strings.lower with
//     its default encoding ""; "É" stays "É"), "strip_punctuation" deletes
//     every byte matched by Keras' RE2 class
//     [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\'] (ASCII punctuation only; "—",
//     "“" and other Unicode punctuation are kept), and
//     "lower_and_strip_punctuation" does both, in that order;
//   - split "whitespace" is tf.strings.split without a separator: it splits
//     on runs of the six ASCII space bytes " \t\n\v\f\r" and drops empty
//     tokens (U+00A0, U+2003, U+3000 and U+0085 are not separators);
//   - ngrams N adds, for every width 2..N, the tokens joined by one space;
//   - tokens are looked up in the vocabulary, unknown ones counting at
//     index 0 (the OOV token "[UNK]"), and the row holds 1 (multi_hot), the
//     number of occurrences (count) or the number of occurrences times the
//     float32 idf weight of the index (tf_idf).
//
// Everything works on bytes, as TensorFlow does, so text that is not valid
// UTF-8 is handled the same way.
package textvec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/kerasgo/kerasgo/dense"
)

// Output modes accepted in Config.OutputMode.
const (
	MultiHot = "multi_hot"
	Count    = "count"
	TFIDF    = "tf_idf"
)

// Standardize values accepted in Config.Standardize ("" means none).
const (
	LowerAndStripPunctuation = "lower_and_strip_punctuation"
	Lower                    = "lower"
	StripPunctuation         = "strip_punctuation"
)

// Whitespace is the only Config.Split value supported.
const Whitespace = "whitespace"

// OOVToken is the out-of-vocabulary token Keras puts at index 0.
const OOVToken = "[UNK]"

// ErrConfig is wrapped by every error New and LoadConfig return for a
// configuration they cannot reproduce.
var ErrConfig = errors.New("textvec: unsupported configuration")

// Config describes a fitted TextVectorization layer. Its JSON form is what
// scripts/make_textvec_golden.py writes; fields it does not know are ignored.
type Config struct {
	// Vocabulary is layer.get_vocabulary(): the OOV token first, then the
	// learned tokens. Its length is the width of every output row.
	Vocabulary []string `json:"vocabulary"`
	// IDF holds the layer's idf weights, one per vocabulary entry (the OOV
	// weight first). Required for tf_idf, must be empty otherwise.
	IDF []float32 `json:"idf,omitempty"`
	// OutputMode is MultiHot, Count or TFIDF.
	OutputMode string `json:"output_mode"`
	// Ngrams is Keras' integer ngrams argument: 0 (None) or 1 keeps the
	// tokens, N > 1 adds the n-grams of every width 2..N.
	Ngrams int `json:"ngrams"`
	// Standardize is LowerAndStripPunctuation, Lower, StripPunctuation or
	// "" (Keras' None).
	Standardize string `json:"standardize"`
	// Split must be Whitespace.
	Split string `json:"split"`
}

// LoadConfig reads a Config from the JSON file at path and validates it.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("loading text vectorization config: %w", err)
	}
	var raw struct {
		Config
		Ngrams json.RawMessage `json:"ngrams"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return c, fmt.Errorf("loading text vectorization config %q: %w", path, err)
	}
	c = raw.Config
	if n := bytes.TrimSpace(raw.Ngrams); len(n) > 0 && !bytes.Equal(n, []byte("null")) {
		if err := json.Unmarshal(n, &c.Ngrams); err != nil {
			return c, fmt.Errorf("loading text vectorization config %q: ngrams %s: %w", path, n, ErrConfig)
		}
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("loading text vectorization config %q: %w", path, err)
	}
	return c, nil
}

func (c *Config) validate() error {
	switch c.Standardize {
	case LowerAndStripPunctuation, Lower, StripPunctuation, "":
	default:
		return fmt.Errorf("standardize %q: %w", c.Standardize, ErrConfig)
	}
	if c.Split != Whitespace {
		return fmt.Errorf("split %q: %w", c.Split, ErrConfig)
	}
	if c.Ngrams < 0 {
		return fmt.Errorf("ngrams %d: %w", c.Ngrams, ErrConfig)
	}
	if len(c.Vocabulary) == 0 || c.Vocabulary[0] != OOVToken {
		return fmt.Errorf("vocabulary must start with %q: %w", OOVToken, ErrConfig)
	}
	switch c.OutputMode {
	case MultiHot, Count:
		if len(c.IDF) != 0 {
			return fmt.Errorf("idf weights with output mode %q: %w", c.OutputMode, ErrConfig)
		}
	case TFIDF:
		if len(c.IDF) != len(c.Vocabulary) {
			return fmt.Errorf("%d idf weights for %d vocabulary entries: %w", len(c.IDF), len(c.Vocabulary), ErrConfig)
		}
	default:
		return fmt.Errorf("output mode %q: %w", c.OutputMode, ErrConfig)
	}
	return nil
}

// Vectorizer turns texts into rows the way the fitted layer does. It is safe
// for concurrent use.
type Vectorizer struct {
	mode    string
	lower   bool
	strip   bool
	ngrams  int
	index   map[string]int32
	idf     []float32
	width   int
	scratch sync.Pool // *scratch
}

type scratch struct {
	text   []byte
	tokens [][]byte
	gram   []byte
	counts []int32 // by index, zero outside touched
	touch  []int32
}

// New validates c and builds a Vectorizer. It copies what it keeps, so the
// caller may reuse c.
func New(c Config) (*Vectorizer, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("new text vectorizer: %w", err)
	}
	v := &Vectorizer{
		mode:   c.OutputMode,
		lower:  c.Standardize == Lower || c.Standardize == LowerAndStripPunctuation,
		strip:  c.Standardize == StripPunctuation || c.Standardize == LowerAndStripPunctuation,
		ngrams: max(c.Ngrams, 1),
		index:  make(map[string]int32, len(c.Vocabulary)),
		idf:    slices.Clone(c.IDF),
		width:  len(c.Vocabulary),
	}
	for i, tok := range c.Vocabulary {
		if i == 0 {
			continue // OOV: unknown tokens already map to 0.
		}
		if _, dup := v.index[tok]; dup || tok == OOVToken {
			return nil, fmt.Errorf("new text vectorizer: vocabulary repeats %q: %w", tok, ErrConfig)
		}
		if tok == "" {
			return nil, fmt.Errorf("new text vectorizer: empty token at index %d: %w", i, ErrConfig)
		}
		v.index[tok] = int32(i)
	}
	v.scratch.New = func() any { return &scratch{counts: make([]int32, v.width)} }
	return v, nil
}

// Width is the length of every row: the vocabulary size.
func (v *Vectorizer) Width() int { return v.width }

// Vectorize writes the row of text into dst (grown if needed, every entry
// overwritten) and returns it, of length Width.
func (v *Vectorizer) Vectorize(text string, dst []float32) []float32 {
	dst = dense.Resize(dst, v.width)
	s := v.count(text)
	for _, i := range s.touch {
		dst[i] = v.value(i, s.counts[i])
		s.counts[i] = 0
	}
	v.scratch.Put(s)
	return dst
}

// VectorizeSparse returns the non-zero entries of the row of text, indices
// ascending, appended to indices[:0] and values[:0].
func (v *Vectorizer) VectorizeSparse(text string, indices []int32, values []float32) ([]int32, []float32) {
	s := v.count(text)
	slices.Sort(s.touch)
	indices, values = indices[:0], values[:0]
	for _, i := range s.touch {
		indices = append(indices, i)
		values = append(values, v.value(i, s.counts[i]))
		s.counts[i] = 0
	}
	v.scratch.Put(s)
	return indices, values
}

func (v *Vectorizer) value(i, n int32) float32 {
	switch v.mode {
	case MultiHot:
		return 1
	case TFIDF:
		return float32(n) * v.idf[i]
	}
	return float32(n)
}

// count standardizes, splits and looks up text, leaving the counts of the
// touched indices in the returned scratch.
func (v *Vectorizer) count(text string) *scratch {
	s := v.scratch.Get().(*scratch)
	s.touch = s.touch[:0]
	s.text = s.text[:0]
	for i := 0; i < len(text); i++ {
		c := text[i]
		if v.strip && isPunct(c) {
			continue
		}
		if v.lower && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s.text = append(s.text, c)
	}
	s.tokens = s.tokens[:0]
	for t := s.text; len(t) > 0; {
		start := 0
		for start < len(t) && isSpace(t[start]) {
			start++
		}
		end := start
		for end < len(t) && !isSpace(t[end]) {
			end++
		}
		if end > start {
			s.tokens = append(s.tokens, t[start:end])
		}
		t = t[end:]
	}
	for _, tok := range s.tokens {
		v.add(s, v.index[string(tok)])
	}
	for n := 2; n <= v.ngrams; n++ {
		for i := 0; i+n <= len(s.tokens); i++ {
			s.gram = append(s.gram[:0], s.tokens[i]...)
			for _, tok := range s.tokens[i+1 : i+n] {
				s.gram = append(s.gram, ' ')
				s.gram = append(s.gram, tok...)
			}
			v.add(s, v.index[string(s.gram)])
		}
	}
	return s
}

func (v *Vectorizer) add(s *scratch, i int32) {
	if s.counts[i] == 0 {
		s.touch = append(s.touch, i)
	}
	s.counts[i]++
}

// isSpace reports the bytes tf.strings.split separates on (absl's
// ascii_isspace).
func isSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// punct is Keras' [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\'] as a byte set.
var punct = func() (t [256]bool) {
	for _, c := range []byte("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'") {
		t[c] = true
	}
	return t
}()

func isPunct(c byte) bool { return punct[c] }
