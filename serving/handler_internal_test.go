package serving

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/errkind"
)

func TestDecodeRowBody(t *testing.T) {
	rows := Spec{InputKey: "features", InputDim: 2, Signature: "serving_default"}
	texts := Spec{InputKey: "text", InputDim: -1, Input: InputText}
	vectorizes := rows
	vectorizes.Input = InputRowsOrText
	tests := map[string]struct {
		spec      Spec
		body      string
		rows      int    // numeric instances returned
		texts     int    // text instances returned
		signature string // signature_name returned
		wantErr   string // part of the 400's message
	}{
		"rows":                              {spec: rows, body: `{"instances": [[1, 2], [3, 4]]}`, rows: 2},
		"row objects":                       {spec: rows, body: `{"instances": [{"features": [1, 2]}]}`, rows: 1},
		"columnar list":                     {spec: rows, body: `{"inputs": [[1, 2]]}`, rows: 1},
		"columnar named input":              {spec: rows, body: `{"inputs": {"features": [[1, 2], [3, 4], [5, 6]]}}`, rows: 3},
		"other keys are ignored":            {spec: rows, body: `{"x": {"y": [1]}, "instances": [[1, 2]], "z": null}`, rows: 1},
		"the first of a repeated key":       {spec: rows, body: `{"instances": [[1, 2]], "instances": 3}`, rows: 1},
		"signature after the instances":     {spec: rows, body: `{"instances": [{"indices": [1]}], "signature_name": "other"}`, signature: "other"},
		"empty signature name":              {spec: rows, body: `{"signature_name": "", "instances": [[1, 2]]}`, rows: 1},
		"texts":                             {spec: texts, body: `{"instances": ["a b", "c"]}`, texts: 2},
		"texts as rank-2 rows":              {spec: texts, body: `{"instances": [["a b"], ["c"]]}`, texts: 2},
		"text objects":                      {spec: texts, body: `{"instances": [{"text": "a"}]}`, texts: 1},
		"texts for a vectorizing model":     {spec: vectorizes, body: `{"inputs": ["a", "b"]}`, texts: 2},
		"numbers for a vectorizing model":   {spec: vectorizes, body: `{"instances": [[1, 2]]}`, rows: 1},
		"columnar other input":              {spec: rows, body: `{"inputs": {"x": [[1, 2]]}}`, wantErr: `inputs must hold exactly the input "features"`},
		"columnar extra input":              {spec: rows, body: `{"inputs": {"features": [[1, 2]], "x": 1}}`, wantErr: `inputs must hold exactly the input "features"`},
		"an object is not a row list":       {spec: rows, body: `{"instances": {"features": [[1, 2]]}}`, wantErr: "expected a list of instances"},
		"not a list":                        {spec: rows, body: `{"instances": 3}`, wantErr: "expected a list of instances"},
		"columnar not a list":               {spec: rows, body: `{"inputs": {"features": 3}}`, wantErr: "expected a list of instances"},
		"empty":                             {spec: rows, body: `{"instances": []}`, wantErr: "no instances"},
		"columnar empty":                    {spec: rows, body: `{"inputs": {"features": []}}`, wantErr: "no instances"},
		"wrong width":                       {spec: rows, body: `{"instances": [[1, 2, 3]]}`, wantErr: `instance 0 has 3 features, input "features" takes 2`},
		"not a number":                      {spec: rows, body: `{"instances": [[1, "2"]]}`, wantErr: "instance 0, feature 1: want a number, got string"},
		"nested too deep":                   {spec: rows, body: `{"instances": [[[1, 2]]]}`, wantErr: "instance 0, feature 0: want a number, got array"},
		"null instance":                     {spec: rows, body: `{"instances": [[1, 2], null]}`, wantErr: "instance 1: want a list of numbers, got null"},
		"b64 for numbers":                   {spec: rows, body: `{"instances": [{"b64": "AA=="}]}`, wantErr: `{"b64": …} strings need a string input`},
		"row object with another key":       {spec: rows, body: `{"instances": [{"features": [1, 2], "x": 1}]}`, wantErr: `instance 0 must hold exactly the input "features"`},
		"text for a numbers model":          {spec: rows, body: `{"instances": ["a"]}`, wantErr: "the model has no vectorizer"},
		"texts and numbers mixed":           {spec: vectorizes, body: `{"instances": ["a", [1, 2]]}`, wantErr: "instance 1: want a text, as instance 0 is"},
		"numbers for a text model":          {spec: texts, body: `{"instances": [1]}`, wantErr: `model input "text" takes a string, got number`},
		"both keys":                         {spec: rows, body: `{"instances": [[1, 2]], "inputs": [[1, 2]]}`, wantErr: "expecting only one of 'inputs' or 'instances'"},
		"neither key":                       {spec: rows, body: `{"rows": [[1, 2]]}`, wantErr: "Missing 'inputs' or 'instances' key"},
		"signature name not a string":       {spec: rows, body: `{"signature_name": 1, "instances": [[1, 2]]}`, wantErr: "'signature_name' key must be a string value."},
		"empty body":                        {spec: rows, body: " \n", wantErr: "The document is empty"},
		"not an object":                     {spec: rows, body: `[[1, 2]]`, wantErr: "the body must be a JSON object"},
		"truncated":                         {spec: rows, body: `{"instances": [[1, 2], [3`, wantErr: "JSON Parse error"},
		"NaN is not JSON":                   {spec: rows, body: `{"instances": [[NaN, 2]]}`, wantErr: "JSON Parse error"},
		"trailing data":                     {spec: rows, body: `{"instances": [[1, 2]]} {}`, wantErr: "JSON Parse error"},
		"syntax error after a row error":    {spec: rows, body: `{"instances": [[1], [1, 2}`, wantErr: "JSON Parse error"},
		"unbounded nesting":                 {spec: rows, body: `{"instances": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, wantErr: "JSON Parse error"},
		"row error before a good signature": {spec: rows, body: `{"instances": [[1]], "signature_name": "serving_default"}`, wantErr: "instance 0 has 1 features", signature: "serving_default"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rb, err := decodeRowBody([]byte(tc.body), tc.spec)
			if err == nil {
				err = rb.err
			}
			if tc.signature != "" && rb.signature != tc.signature {
				t.Errorf("signature %q, want %q", rb.signature, tc.signature)
			}
			if tc.wantErr != "" {
				if errkind.Of(err).HTTPStatus() != http.StatusBadRequest || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a 400 containing %q", err, tc.wantErr)
				}
				return
			}
			if tc.signature != "" {
				return // the instances are read again as that signature's tensors
			}
			if err != nil || rb.x.Rows != tc.rows || len(rb.texts) != tc.texts {
				t.Fatalf("%d rows and %d texts, error %v; want %d and %d", rb.x.Rows, len(rb.texts), err, tc.rows, tc.texts)
			}
			if tc.rows > 0 && len(rb.x.Data) != tc.rows*tc.spec.InputDim {
				t.Fatalf("%d values for %d rows", len(rb.x.Data), tc.rows)
			}
		})
	}
}
