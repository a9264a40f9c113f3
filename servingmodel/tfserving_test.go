package servingmodel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// restCase is one entry of testdata/serving/rest_cases.json: a request and
// the answer TF Serving's documentation or tests give for it.
type restCase struct {
	ID            string          `json:"id"`
	Source        string          `json:"source"`
	Model         *string         `json:"model"`
	Method        string          `json:"method"`
	Path          string          `json:"path"`
	Request       json.RawMessage `json:"request"`
	Status        int             `json:"status"`
	Response      json.RawMessage `json:"response"`
	ErrorContains *string         `json:"error_contains"`
}

// TestTFServingCases serves TF Serving's own test SavedModels and sends the
// requests of its REST documentation and tests, comparing status codes,
// response bodies (numbers as written) and error messages.
func TestTFServingCases(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "serving", "rest_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Cases []restCase }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "testdata", "serving")
	cfg := serving.Config{Models: []serving.ModelConfig{
		{Name: "default", BasePath: filepath.Join(dir, "saved_model_half_plus_two_cpu")},
		{Name: "saved_model_half_plus_three", BasePath: filepath.Join(dir, "saved_model_half_plus_three")},
		// As TF Serving's handler test serves it: version 123 only, labelled.
		{Name: "saved_model_half_plus_two_2_versions", BasePath: filepath.Join(dir, "saved_model_half_plus_two_2_versions"),
			Versions: []int64{123}, Labels: map[string]int64{"Version_Label": 123}},
	}}
	srv, err := serving.New(context.Background(), cfg, servingmodel.Load)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	served := map[string]bool{"saved_model_half_plus_two_cpu": true, "saved_model_half_plus_three": true, "saved_model_half_plus_two_2_versions": true}
	checked := 0
	for _, c := range file.Cases {
		routing := c.Model == nil && c.Method != "" && strings.HasPrefix(c.Path, "/v1/") && !strings.Contains(c.Path, "{MODEL}")
		if !routing && (c.Model == nil || !served[*c.Model]) {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			checked++
			var body io.Reader
			if len(c.Request) > 0 && string(c.Request) != "null" {
				var s string
				if json.Unmarshal(c.Request, &s) == nil {
					body = strings.NewReader(s) // a raw (possibly malformed) body
				} else {
					body = bytes.NewReader(c.Request)
				}
			}
			req, _ := http.NewRequest(c.Method, ts.URL+c.Path, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.Status {
				t.Fatalf("%s %s: %d %s; TF Serving answers %d (%s)", c.Method, c.Path, resp.StatusCode, got, c.Status, c.Source)
			}
			if c.ErrorContains != nil && !strings.Contains(string(got), *c.ErrorContains) {
				t.Errorf("error %s; TF Serving's contains %q", got, *c.ErrorContains)
			}
			if len(c.Response) > 0 && string(c.Response) != "null" {
				if w, g := decodeNumbers(t, c.Response), decodeNumbers(t, got); !sameJSON(w, g) {
					t.Errorf("response\n%s\nTF Serving's\n%s", got, c.Response)
				}
			}
		})
	}
	if checked < 10 {
		t.Fatalf("only %d TF Serving cases checked", checked)
	}
	t.Logf("%d TF Serving cases checked", checked)
}

// sameJSON compares decoded JSON. Numbers must have the same value, and the
// same text where TF Serving's is written as a float ("3.0"): the handler
// tests write whole numbers as integers ("42") and compare values, while its
// writer and documentation give "42.0".
func sameJSON(want, got any) bool {
	switch w := want.(type) {
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return false
		}
		wf, err1 := w.Float64()
		gf, err2 := g.Float64()
		if err1 != nil || err2 != nil || wf != gf {
			return false
		}
		return !strings.ContainsAny(w.String(), ".eE") || w == g
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameJSON(w[i], g[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if !sameJSON(v, g[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// decodeNumbers decodes JSON keeping numbers as written ("3.0" stays "3.0").
func decodeNumbers(tb testing.TB, b []byte) any {
	tb.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		tb.Fatalf("%v: %s", err, b)
	}
	return v
}
