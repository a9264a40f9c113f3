// Command kerasgo-loadgen sends requests to HTTP endpoints on loopback from
// N concurrent clients for a bounded time and prints what happened as JSON.
// It refuses any address outside the loopback range.
//
// With -url and -body it sends one fixed body and reports throughput and
// latency percentiles: the load side of `make bench`'s serving benchmark.
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

func main() {
	target := flag.String("url", "", "endpoint to POST to (loopback only)")
	bodyFile := flag.String("body", "", "file holding the request body")
	mixFile := flag.String("mix", "", `JSON file of request kinds to mix: [{"name", "url", "body" (a file), "weight"}]`)
	clients := flag.Int("c", 1, "concurrent clients")
	duration := flag.Duration("d", 5*time.Second, "how long to send (at most 10m)")
	warmup := flag.Duration("warmup", time.Second, "requests sent first and not counted (fixed body only)")
	flag.Parse()
	if err := run(*target, *bodyFile, *mixFile, *clients, *duration, *warmup); err != nil {
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

func run(target, bodyFile, mixFile string, clients int, duration, warmup time.Duration) error {
	if clients < 1 || clients > 1024 || duration <= 0 || duration > 10*time.Minute {
		return errors.New("want 1..1024 clients and a duration up to 10m")
	}
	kinds := []kind{{Name: "request", URL: target, Body: bodyFile, Weight: 1}}
	if mixFile != "" {
		data, err := os.ReadFile(mixFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &kinds); err != nil {
			return fmt.Errorf("%s: %w", mixFile, err)
		}
		if len(kinds) == 0 {
			return fmt.Errorf("%s: no request kinds", mixFile)
		}
	}
	for i := range kinds {
		k := &kinds[i]
		u, err := url.Parse(k.URL)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return fmt.Errorf("%s: %s is not a loopback address", k.Name, u.Host)
		}
		if k.Weight < 1 {
			return fmt.Errorf("%s: weight %d, want 1 or more", k.Name, k.Weight)
		}
		if k.body, err = os.ReadFile(k.Body); err != nil {
			return err
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}, Timeout: 60 * time.Second}
	if mixFile != "" {
		return mix(client, kinds, clients, duration)
	}
	return fixed(client, kinds[0], clients, duration, warmup)
}

// fixed sends one body and reports throughput and latency; any answer but
// 200 counts as an error.
func fixed(client *http.Client, k kind, clients int, duration, warmup time.Duration) error {
	send := func(*rand.Rand) (time.Duration, error) {
		start := time.Now()
		code, err := post(client, k)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		return time.Since(start), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup)
	loop(ctx, clients, send, nil)
	cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	firstErr := ""
	ctx, cancel = context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	loop(ctx, clients, send, func(d time.Duration, err error) {
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
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"clients": clients, "requests": len(lat), "errors": errs, "first_error": firstErr,
		"rps": float64(len(lat)) / elapsed.Seconds(), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
	})
}

// connError is a request that got no HTTP answer.
type connError struct {
	UnixMS int64  `json:"unix_ms"`
	Kind   string `json:"kind"`
	Error  string `json:"error"`
}

// mix sends the kinds at random by weight and reports the status codes of
// each and every connection error (the first 100 in full).
func mix(client *http.Client, kinds []kind, clients int, duration time.Duration) error {
	total := 0
	for _, k := range kinds {
		total += k.Weight
	}
	var mu sync.Mutex
	codes := map[string]map[string]int{}
	var connErrs []connError
	nConnErrs := 0
	lastConnErr := int64(0)
	send := func(rng *rand.Rand) (time.Duration, error) {
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
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	loop(ctx, clients, send, nil)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
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

// loop runs clients goroutines sending until ctx ends; record, when set,
// gets every request that ended before ctx did.
func loop(ctx context.Context, clients int, send func(*rand.Rand) (time.Duration, error), record func(time.Duration, error)) {
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for ctx.Err() == nil {
				d, err := send(rng)
				if record != nil && ctx.Err() == nil {
					record(d, err)
				}
			}
		})
	}
	wg.Wait()
}
