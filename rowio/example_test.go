package rowio_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kerasgo/kerasgo/rowio"
)

func ExampleNewTableReader() {
	in := strings.NewReader("id,height,weight\r\nann,1.62,55\r\nbob,1.80,\r\n")
	r := rowio.NewTableReader(in, "people.csv", rowio.TableOptions{})
	var row rowio.Row
	for {
		err := r.Read(&row)
		if err == io.EOF {
			break
		}
		var pe *rowio.ParseError
		if errors.As(err, &pe) {
			fmt.Printf("bad input at line %d, field %q: %v\n", pe.Line, pe.Field, errors.Is(err, rowio.ErrFormat))
			break
		}
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(r.Header(), row.Line, row.ID, row.Features)
	}
	// Output:
	// [id height weight] 2 ann [1.62 55]
	// bad input at line 3, field "weight": true
}

func ExampleNewCSVPredictionWriter() {
	w := rowio.NewCSVPredictionWriter(os.Stdout, rowio.PredictionOptions{
		Classes:    []string{"spam", "urgent", "personal"},
		MultiLabel: true,
		Threshold:  0.5,
	})
	_ = w.Write("msg-1", []float32{0.9, 0.7, 0.1})
	_ = w.Write("msg-2", []float32{0.2, 0.1, 0.4})
	if err := w.Flush(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// id,label,score,p_spam,p_urgent,p_personal
	// msg-1,spam|urgent,0.9,0.9,0.7,0.1
	// msg-2,,0.4,0.2,0.1,0.4
}

func ExampleReadNPYFile() {
	m, err := rowio.ReadNPYFile("../testdata/golden/fortunes_inputs.npy")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Rows, m.Cols)
	// Output:
	// 64 256
}
