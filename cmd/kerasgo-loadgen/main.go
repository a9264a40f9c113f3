// Command kerasgo-loadgen sends a fixed request body to an HTTP endpoint from
// N concurrent clients for a bounded time and prints throughput and latency
// percentiles as JSON. It is the load side of `make bench`'s serving
// benchmark and refuses any address outside the loopback range.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	target := flag.String("url", "", "endpoint to POST to (loopback only)")
	bodyFile := flag.String("body", "", "file holding the request body")
	clients := flag.Int("c", 1, "concurrent clients")
	duration := flag.Duration("d", 5*time.Second, "how long to send (at most 60s)")
	warmup := flag.Duration("warmup", time.Second, "requests sent first and not counted")
	flag.Parse()
	if err := run(*target, *bodyFile, *clients, *duration, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "kerasgo-loadgen:", err)
		os.Exit(1)
	}
}

func run(target, bodyFile string, clients int, duration, warmup time.Duration) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("%s is not a loopback address", u.Host)
	}
	if clients < 1 || clients > 1024 || duration <= 0 || duration > time.Minute {
		return fmt.Errorf("want 1..1024 clients and a duration up to 60s")
	}
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	send := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), warmup)
	loop(ctx, clients, send, nil)
	cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errors := 0
	firstErr := ""
	ctx, cancel = context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	loop(ctx, clients, send, func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if errors == 0 {
				firstErr = err.Error()
			}
			errors++
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
		"clients": clients, "requests": len(lat), "errors": errors, "first_error": firstErr,
		"rps": float64(len(lat)) / elapsed.Seconds(), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
	})
}

// loop runs clients goroutines sending until ctx ends.
func loop(ctx context.Context, clients int, send func() (time.Duration, error), record func(time.Duration, error)) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				d, err := send()
				if record != nil && ctx.Err() == nil {
					record(d, err)
				}
			}
		})
	}
	wg.Wait()
}
