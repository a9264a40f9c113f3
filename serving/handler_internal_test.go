package serving

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

func TestInstanceList(t *testing.T) {
	spec := Spec{InputKey: "features", InputDim: 2}
	tests := map[string]struct {
		body     string // the value of "instances" or "inputs"
		columnar bool
		want     int    // instances returned
		wantErr  string // part of the 400's message
	}{
		"rows":                             {body: `[[1, 2], [3, 4]]`, want: 2},
		"row objects are left as they are": {body: `[{"features": [1, 2]}]`, want: 1},
		"columnar list":                    {body: `[[1, 2]]`, columnar: true, want: 1},
		"columnar named input":             {body: `{"features": [[1, 2], [3, 4], [5, 6]]}`, columnar: true, want: 3},
		"columnar other input":             {body: `{"x": [[1, 2]]}`, columnar: true, wantErr: `inputs must hold exactly the input "features"`},
		"columnar extra input":             {body: `{"features": [[1, 2]], "x": 1}`, columnar: true, wantErr: `inputs must hold exactly the input "features"`},
		"an object is not a row list":      {body: `{"features": [[1, 2]]}`, wantErr: "expected a list of instances"},
		"not a list":                       {body: `3`, wantErr: "expected a list of instances"},
		"columnar not a list":              {body: `{"features": 3}`, columnar: true, wantErr: "expected a list of instances"},
		"empty":                            {body: `[]`, wantErr: "no instances"},
		"columnar empty":                   {body: `{"features": []}`, columnar: true, wantErr: "no instances"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			raw, err := fastjson.Parse(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			items, err := instanceList(raw, spec, tc.columnar)
			if tc.wantErr != "" {
				var ae *apiError
				if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a 400 containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(items) != tc.want {
				t.Fatalf("%d instances, error %v; want %d", len(items), err, tc.want)
			}
		})
	}
}
