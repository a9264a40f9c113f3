// Command kerasgo-loadgen sends requests to servers on loopback from N
// concurrent clients for a bounded time and prints what happened as one JSON
// line. It refuses any address outside the loopback range.
//
// With -url and -body it POSTs one fixed body and reports throughput and
// latency percentiles: the load side of `make bench`'s serving benchmark.
// With -grpc, -model and -body it turns the same TF Serving REST predict body
// into one PredictRequest and calls TF Serving's gRPC PredictionService/Predict
// with it instead, reporting the same figures (see grpc.go); with -protocol
// oip it calls the Open Inference Protocol's ModelInfer with the same
// tensors, as Triton's client sends them.
// With -mix it sends a weighted mix of requests (valid, malformed,
// oversized, ...) and reports, for each kind, the HTTP status codes and the
// connection errors with their times: the load side of `make soak`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// requestTimeout bounds one request, HTTP or gRPC.
const requestTimeout = 60 * time.Second

// config is the command line.
type config struct {
	url      string // HTTP endpoint of the fixed body
	body     string // file holding the fixed body
	mix      string // JSON file of request kinds to mix
	clients  int
	duration time.Duration
	warmup   time.Duration
	grpc     grpcConfig
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "", "endpoint to POST to (loopback only)")
	flag.StringVar(&cfg.body, "body", "", "file holding the request body (for -grpc: a TF Serving REST predict body)")
	flag.StringVar(&cfg.mix, "mix", "", `JSON file of request kinds to mix: [{"name", "url", "body" (a file), "weight"}]`)
	flag.IntVar(&cfg.clients, "c", 1, "concurrent clients")
	flag.DurationVar(&cfg.duration, "d", 5*time.Second, "how long to send (at most 10m)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "requests sent first and not counted (fixed body only)")
	flag.StringVar(&cfg.grpc.addr, "grpc", "", "host:port of a gRPC server to call instead of -url (loopback only)")
	cfg.grpc.protocol = protocolTFServing
	flag.Var(&cfg.grpc.protocol, "protocol", "gRPC API of -grpc: tfserving (PredictionService/Predict) or oip (the Open Inference Protocol's ModelInfer, raw FP32 inputs whatever -tensor-content says)")
	flag.StringVar(&cfg.grpc.model, "model", "", "model name of the gRPC requests (model_spec.name)")
	flag.StringVar(&cfg.grpc.signature, "signature", "serving_default", "signature of the gRPC requests (model_spec.signature_name); unless set, the body's signature_name wins")
	flag.StringVar(&cfg.grpc.input, "input", "features", "input key of the gRPC requests for bodies that do not name their input")
	flag.BoolVar(&cfg.grpc.tensorContent, "tensor-content", true, "encode gRPC tensors as tensor_content bytes, as tf.make_tensor_proto does for NumPy arrays (false: typed float_val)")
	flag.IntVar(&cfg.grpc.conns, "conns", 1, "gRPC connections the clients share round-robin (1: one multiplexed connection; -c: one per client)")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "signature" {
			cfg.grpc.signatureSet = true
		}
	})
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kerasgo-loadgen:", err)
		os.Exit(1)
	}
}

// kind is one kind of request of a mix.
type kind struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Body   string `json:"body"`
	Weight int    `json:"weight"`
	body   []byte
}

// isLoopback reports whether host (a name or an IP address, without port)
// is localhost or in the loopback range.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run sends the load cfg describes and writes its report to stdout.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	if cfg.clients < 1 || cfg.clients > 1024 || cfg.duration <= 0 || cfg.duration > 10*time.Minute {
		return errors.New("want 1..1024 clients and a duration up to 10m")
	}
	if cfg.warmup < 0 {
		return errors.New("want a warm-up of 0 or more")
	}
	if cfg.grpc.protocol == protocolOIP && cfg.grpc.addr == "" {
		return errors.New("-protocol oip needs -grpc (the Open Inference Protocol over REST takes -url .../v2/models/NAME/infer and a JSON body)")
	}
	if cfg.grpc.addr != "" {
		if cfg.url != "" || cfg.mix != "" {
			return errors.New("-grpc takes neither -url nor -mix")
		}
		return runGRPC(ctx, cfg, stdout)
	}
	kinds := []kind{{Name: "request", URL: cfg.url, Body: cfg.body, Weight: 1}}
	if cfg.mix != "" {
		data, err := os.ReadFile(cfg.mix)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &kinds); err != nil {
			return fmt.Errorf("%s: %w", cfg.mix, err)
		}
		if len(kinds) == 0 {
			return fmt.Errorf("%s: no request kinds", cfg.mix)
		}
	}
	for i := range kinds {
		k := &kinds[i]
		u, err := url.Parse(k.URL)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%s: %s is not a loopback address", k.Name, u.Host)
		}
		if k.Weight < 1 {
			return fmt.Errorf("%s: weight %d, want 1 or more", k.Name, k.Weight)
		}
		if k.body, err = os.ReadFile(k.Body); err != nil {
			return err
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients, DisableCompression: true}, Timeout: requestTimeout}
	if cfg.mix != "" {
		return mix(ctx, client, kinds, cfg.clients, cfg.duration, stdout)
	}
	k := kinds[0]
	// HTTP requests ignore the loop's context: each ends on its own, within
	// the client's timeout.
	send := func(context.Context, int) error {
		code, err := post(client, k)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		return err
	}
	return fixed(ctx, send, cfg.clients, cfg.duration, cfg.warmup, stdout)
}

// fixed calls send from clients goroutines, first for warmup, uncounted,
// then for duration, and reports throughput and latency percentiles; send
// gets the client's index and returns an error for any answer but success.
// Its context ends with the phase: requests cut short by it are not counted.
func fixed(ctx context.Context, send func(ctx context.Context, client int) error, clients int, duration, warmup time.Duration, stdout io.Writer) error {
	timed := func(ctx context.Context, client int, _ *rand.Rand) (time.Duration, error) {
		start := time.Now()
		err := send(ctx, client)
		return time.Since(start), err
	}
	if warmup > 0 {
		wctx, cancel := phase(ctx, warmup)
		loop(wctx, clients, timed, nil)
		cancel()
	}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	firstErr := ""
	ctx, cancel := phase(ctx, duration)
	defer cancel()
	start := time.Now()
	loop(ctx, clients, timed, func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if errs == 0 {
				firstErr = err.Error()
			}
			errs++
			return
		}
		lat = append(lat, d)
	})
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	return json.NewEncoder(stdout).Encode(map[string]any{
		"clients": clients, "requests": len(lat), "errors": errs, "first_error": firstErr,
		"rps": float64(len(lat)) / elapsed.Seconds(), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
	})
}

// phase returns a context canceled after d. Canceled, not past a deadline:
// gRPC would see a deadline and could fail a request with DeadlineExceeded
// before ctx.Err() is set, so that loop would count it; a cancellation only
// reaches requests after it is set.
func phase(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := time.AfterFunc(d, cancel)
	return ctx, func() {
		t.Stop()
		cancel()
	}
}

// connError is a request that got no HTTP answer.
type connError struct {
	UnixMS int64  `json:"unix_ms"`
	Kind   string `json:"kind"`
	Error  string `json:"error"`
}

// mix sends the kinds at random by weight and reports the status codes of
// each and every connection error (the first 100 in full).
func mix(ctx context.Context, client *http.Client, kinds []kind, clients int, duration time.Duration, stdout io.Writer) error {
	total := 0
	for _, k := range kinds {
		total += k.Weight
	}
	var mu sync.Mutex
	codes := map[string]map[string]int{}
	var connErrs []connError
	nConnErrs := 0
	lastConnErr := int64(0)
	send := func(_ context.Context, _ int, rng *rand.Rand) (time.Duration, error) {
		n := rng.IntN(total)
		k := kinds[0]
		for _, c := range kinds {
			if n < c.Weight {
				k = c
				break
			}
			n -= c.Weight
		}
		code, err := post(client, k)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			now := time.Now().UnixMilli()
			nConnErrs++
			lastConnErr = now
			if len(connErrs) < 100 {
				connErrs = append(connErrs, connError{UnixMS: now, Kind: k.Name, Error: err.Error()})
			}
			if codes[k.Name] == nil {
				codes[k.Name] = map[string]int{}
			}
			codes[k.Name]["connection error"]++
			mu.Unlock()
			// After the server is gone every request fails at once; back
			// off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			return 0, nil
		}
		if codes[k.Name] == nil {
			codes[k.Name] = map[string]int{}
		}
		codes[k.Name][strconv.Itoa(code)]++
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	start := time.Now()
	loop(ctx, clients, send, nil)
	return json.NewEncoder(stdout).Encode(map[string]any{
		"clients": clients, "start_unix_ms": start.UnixMilli(), "seconds": time.Since(start).Seconds(),
		"codes": codes, "connection_errors": nConnErrs, "last_connection_error_unix_ms": lastConnErr,
		"first_connection_errors": connErrs,
	})
}

// post sends one request and reads the whole answer.
func post(client *http.Client, k kind) (int, error) {
	resp, err := client.Post(k.URL, "application/json", bytes.NewReader(k.body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// loop runs clients goroutines sending until ctx ends; send gets ctx, the
// client's index and its random source, and record, when set, gets every
// request that ended before ctx did.
func loop(ctx context.Context, clients int, send func(ctx context.Context, client int, rng *rand.Rand) (time.Duration, error), record func(time.Duration, error)) {
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for ctx.Err() == nil {
				d, err := send(ctx, i, rng)
				if record != nil && ctx.Err() == nil {
					record(d, err)
				}
			}
		})
	}
	wg.Wait()
}
