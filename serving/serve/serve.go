// Package serve runs a serving.Server as a process does: TF Serving's REST
// API and gRPC API on their own ports, with the connection limits and
// timeouts of an exposed server, gRPC health, and a graceful shutdown when
// the context ends. ReadModelConfig reads the model config files TF Serving
// and kerasgo take. `kerasgo serve` is this package over flags.
package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// The gRPC listener's HTTP/2 limits. Each call is admitted by its
// message's size before the message is read (grpcGate), so what gRPC holds
// outside the admission is the bytes clients sent ahead of it: at most
// GRPCReceiveWindow a call and GRPCConnectionWindow a connection (HTTP/2
// flow control), that is Options.MaxConnections × GRPCConnectionWindow in
// all (1 GiB at the default 1,024 connections; fewer connections, a
// tighter bound).
const (
	// GRPCStreamsPerConnection bounds the calls one connection runs at once.
	GRPCStreamsPerConnection = 100
	// GRPCReceiveWindow is a call's HTTP/2 flow-control window.
	GRPCReceiveWindow = 64 << 10
	// GRPCConnectionWindow is a connection's HTTP/2 flow-control window,
	// shared by its calls. A client such as TF Serving's, whose calls all
	// share one connection, has at most this much of their messages on the
	// way: at 64 KiB, 64 clients sending 40 KB rows over one connection got
	// 0.55–0.71× the calls of 1 MiB, which is where the gain stopped
	// (docs/serving.md, "gRPC memory").
	GRPCConnectionWindow = 1 << 20
)

// Options configure Run. Start from DefaultOptions.
type Options struct {
	// Host is the address to listen on (default 127.0.0.1: loopback only).
	Host string
	// RESTPort (default 8501) and GRPCPort (default 8500; -1: no gRPC) are
	// the ports; 0 picks a free one.
	RESTPort, GRPCPort int
	// MaxGRPCMessageBytes is the largest gRPC message either way (default
	// 128 MiB).
	MaxGRPCMessageBytes int
	// MaxConnections is how many connections each API keeps open at once;
	// more wait to be accepted (default 1024).
	MaxConnections int
	// MaxHeaderBytes bounds a REST request line and headers (default 64 KiB).
	MaxHeaderBytes int
	// ReadHeaderTimeout is how long a client has to send its headers (and
	// a gRPC connection its handshake); default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle longer (default 2m).
	IdleTimeout time.Duration
	// Reload says who may change the served models over gRPC's
	// HandleReloadConfigRequest, and from where; the zero value, nobody
	// (grpcapi.ReloadPolicy).
	Reload grpcapi.ReloadPolicy
	// Logger receives the listening addresses and shutdown lines (nil: none).
	Logger *slog.Logger
	// OnListen, if set, is called with the bound addresses once both APIs
	// listen (grpc is nil without gRPC).
	OnListen func(rest, grpc net.Addr)
	// TLS, if set, serves both APIs over TLS with it (ReadSSLConfig reads
	// TF Serving's --ssl_config_file into one); nil serves plain HTTP and
	// gRPC over HTTP/2 without TLS.
	TLS *tls.Config
}

// DefaultOptions returns the options of `kerasgo serve` without flags.
func DefaultOptions() Options {
	return Options{
		Host: "127.0.0.1", RESTPort: 8501, GRPCPort: 8500,
		MaxGRPCMessageBytes: 128 << 20, MaxConnections: 1024, MaxHeaderBytes: 64 << 10,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
	}
}

func (o Options) validate() error {
	switch {
	case o.MaxConnections < 1:
		return errors.New("max connections must be at least 1")
	case o.MaxHeaderBytes < 1<<10:
		return errors.New("max header bytes must be at least 1 KiB")
	case o.ReadHeaderTimeout <= 0 || o.IdleTimeout <= 0:
		return errors.New("the read-header and idle timeouts must be longer than 0")
	case o.RESTPort < 0 || o.RESTPort > 65535:
		return fmt.Errorf("REST port %d: want 0 (any free port) to 65535", o.RESTPort)
	case o.GRPCPort < -1 || o.GRPCPort > 65535:
		return fmt.Errorf("gRPC port %d: want -1 (no gRPC), 0 (any free port) or up to 65535", o.GRPCPort)
	case o.GRPCPort >= 0 && o.MaxGRPCMessageBytes < 1<<10:
		return errors.New("max gRPC message bytes must be at least 1 KiB")
	}
	return nil
}

// Run serves srv's REST handler and (unless GRPCPort is -1) TF Serving's
// gRPC API and gRPC health until ctx ends, then stops accepting
// connections, turns health NOT_SERVING, lets in-flight requests finish
// (cut srv.RequestTimeout() + 5s later) and returns nil. A client must
// send its body, and read the answer, within srv.RequestTimeout() + 10s.
// A listener failing before that is its error. Closing srv stays the
// caller's.
func Run(ctx context.Context, srv *serving.Server, opts Options) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	reload, err := opts.Reload.Validate()
	if err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.RESTPort)))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	ln = netutil.LimitListener(ln, opts.MaxConnections)
	hs := &http.Server{
		Handler:           srv.Handler(),
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       srv.RequestTimeout() + 10*time.Second,
		WriteTimeout:      srv.RequestTimeout() + 10*time.Second,
		IdleTimeout:       opts.IdleTimeout,
	}
	errc := make(chan error, 2)
	scheme := "http://"
	if opts.TLS != nil {
		scheme = "https://"
	}
	logArgs := []any{"address", scheme + ln.Addr().String()}
	var gs *grpc.Server
	var ghs *http.Server
	var healthSrv *health.Server
	var grpcAddr net.Addr
	if opts.GRPCPort >= 0 {
		gln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.GRPCPort)))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening for gRPC: %w", err)
		}
		gln = netutil.LimitListener(gln, opts.MaxConnections)
		gs = grpc.NewServer(grpc.MaxRecvMsgSize(opts.MaxGRPCMessageBytes), grpc.MaxSendMsgSize(opts.MaxGRPCMessageBytes),
			grpc.ForceServerCodecV2(grpcapi.NewCodec()))
		grpcapi.New(srv, reload).Register(gs)
		healthSrv = health.NewServer()
		healthpb.RegisterHealthServer(gs, healthSrv)
		// TF Serving also answers the services' short names.
		for _, name := range []string{"", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService", "PredictionService", "ModelService", "inference.GRPCInferenceService"} {
			healthSrv.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
		// gRPC over HTTP/2 without TLS (prior knowledge, as TF Serving's
		// clients connect), through net/http so that grpcGate admits each
		// call before its message is read. Unread request bytes are bounded
		// by the flow-control windows: GRPCReceiveWindow a stream, and
		// GRPCConnectionWindow a connection.
		protocols := new(http.Protocols)
		if opts.TLS != nil {
			protocols.SetHTTP2(true)
		} else {
			protocols.SetUnencryptedHTTP2(true)
		}
		ghs = &http.Server{
			Handler:           &grpcGate{srv: srv, grpc: gs, maxMsg: opts.MaxGRPCMessageBytes},
			Protocols:         protocols,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams:          GRPCStreamsPerConnection,
				MaxReceiveBufferPerStream:     GRPCReceiveWindow,
				MaxReceiveBufferPerConnection: GRPCConnectionWindow,
			},
		}
		grpcAddr = gln.Addr()
		logArgs = append(logArgs, "grpc_address", grpcAddr.String())
		if opts.TLS != nil {
			ghs.TLSConfig = opts.TLS.Clone()
			ghs.TLSConfig.NextProtos = []string{"h2"}
			go func() { errc <- ghs.ServeTLS(gln, "", "") }()
		} else {
			go func() { errc <- ghs.Serve(gln) }()
		}
	}
	log.Info("serving", logArgs...)
	if opts.OnListen != nil {
		opts.OnListen(ln.Addr(), grpcAddr)
	}
	if opts.TLS != nil {
		hs.TLSConfig = opts.TLS.Clone()
		hs.TLSConfig.NextProtos = []string{"http/1.1"}
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		if ghs != nil {
			ghs.Close()
			gs.Stop()
		}
		hs.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), srv.RequestTimeout()+5*time.Second)
	defer cancel()
	servers := 1
	if ghs != nil {
		// Health turns NOT_SERVING first, so balancers stop sending; then
		// in-flight calls finish, or are cut at the shutdown deadline.
		servers++
		healthSrv.Shutdown()
		go func() {
			if err := ghs.Shutdown(shutdown); err != nil {
				ghs.Close()
			}
			gs.Stop()
		}()
	}
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	}
	log.Info("stopped")
	return nil
}

// ReadModelConfig reads a model config file: kerasgo's JSON
// (serving.ParseFileConfig), or TF Serving's --model_config_file (a
// ModelServerConfig in protobuf text format), so an existing TF Serving
// config works unchanged.
func ReadModelConfig(path string) ([]serving.ModelConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model config: %w", err)
	}
	models, err := ParseModelConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return models, nil
}

// ParseModelConfig is ReadModelConfig on the file's contents.
func ParseModelConfig(data []byte) ([]serving.ModelConfig, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		return serving.ParseFileConfig(data)
	}
	var msc tfservingpb.ModelServerConfig
	if err := prototext.Unmarshal(data, &msc); err != nil {
		return nil, fmt.Errorf("model config (TF Serving's text format): %w", err)
	}
	return grpcapi.ModelConfigs(&msc)
}
