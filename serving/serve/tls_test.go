package serve_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/oippb"
	"github.com/kerasgo/kerasgo/serving/serve"
	"github.com/kerasgo/kerasgo/tensor"
)

// pki is a certificate authority, a server certificate for 127.0.0.1 and a
// client certificate, all issued by it, as PEM.
type pki struct {
	caPEM, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	key := func() (*ecdsa.PrivateKey, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	caKey, _ := key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, keyPEM := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprint(serial)},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), keyPEM
	}
	p := pki{caPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.serverCert, p.serverKey = issue(2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue(3, x509.ExtKeyUsageClientAuth)
	return p
}

// sslConfig writes an SSLConfig text file as TF Serving's users write one:
// PEM text in quoted strings.
func sslConfig(t *testing.T, p pki, clientVerify bool) string {
	t.Helper()
	text := fmt.Sprintf("server_key: %s\nserver_cert: %s\ncustom_ca: %s\nclient_verify: %v\n",
		strconv.Quote(p.serverKey), strconv.Quote(p.serverCert), strconv.Quote(p.caPEM), clientVerify)
	path := filepath.Join(t.TempDir(), "ssl.config")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plus is a rows model of 3 features answering their sum.
type plus struct{}

func (plus) Predict(_ context.Context, x dense.Matrix) (dense.Matrix, error) {
	y := dense.New(x.Rows, 1)
	for i := range x.Rows {
		for _, v := range x.Row(i) {
			y.Data[i] += v
		}
	}
	return y, nil
}

func (plus) Spec() serving.Spec { return (&holding{}).Spec() }
func (plus) Close() error       { return nil }

// TestTLS serves both APIs with an SSL config file: REST and gRPC (the Open
// Inference Protocol's ModelInfer) answer over TLS, a plain-text client is
// refused, and with client_verify a client without a certificate from
// custom_ca cannot connect while one with it can.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(p.caPEM))
	clientCert, err := tls.X509KeyPair([]byte(p.clientCert), []byte(p.clientKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("client_verify=%v", verify), func(t *testing.T) {
			cfg, err := serve.ReadSSLConfig(sslConfig(t, p, verify))
			if err != nil {
				t.Fatal(err)
			}
			rest, grpcAddr := startTLS(t, cfg)
			withCert := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}}
			without := &tls.Config{RootCAs: roots}

			body := `{"instances": [[1, 2, 3]]}`
			post := func(c *tls.Config, scheme string) (string, error) {
				client := &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 10 * time.Second}
				resp, err := client.Post(scheme+rest+"/v1/models/m:predict", "application/json", strings.NewReader(body))
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				b := new(strings.Builder)
				_, err = fmt.Fprint(b, resp.StatusCode, " ")
				buf := make([]byte, 512)
				n, _ := resp.Body.Read(buf)
				b.Write(buf[:n])
				return b.String(), err
			}
			if got, err := post(withCert, "https://"); err != nil || !strings.Contains(got, `"predictions"`) {
				t.Fatalf("REST over TLS: %q, %v", got, err)
			}
			if got, err := post(nil, "http://"); err == nil && !strings.HasPrefix(got, "400") {
				t.Errorf("plain HTTP to the TLS port answered %q", got)
			}
			if _, err := post(without, "https://"); (err != nil) != verify {
				t.Errorf("REST without a client certificate: %v (client_verify %v)", err, verify)
			}

			infer := func(c *tls.Config) error {
				conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(c)))
				if err != nil {
					return err
				}
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				resp, err := oippb.NewGRPCInferenceServiceClient(conn).ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "m",
					Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 3},
						Contents: &oippb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}}}}})
				if err != nil {
					return err
				}
				y, err := tensor.DecodeRaw(tensor.Float32, []int64{1, 1}, resp.GetRawOutputContents()[0])
				if err != nil || y.Data.([]float32)[0] != 6 {
					return fmt.Errorf("answer %v (%v), want 6", y.Data, err)
				}
				return nil
			}
			if err := infer(withCert); err != nil {
				t.Fatalf("gRPC over TLS: %v", err)
			}
			if err := infer(without); (err != nil) != verify {
				t.Errorf("gRPC without a client certificate: %v (client_verify %v)", err, verify)
			}
		})
	}
}

func TestSSLConfigErrors(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	for name, c := range map[string]struct{ text, want string }{
		"no key":                   {fmt.Sprintf("server_cert: %s", strconv.Quote(p.serverCert)), "server_cert and server_key"},
		"client_verify without CA": {fmt.Sprintf("server_key: %s server_cert: %s client_verify: true", strconv.Quote(p.serverKey), strconv.Quote(p.serverCert)), "client_verify needs custom_ca"},
		"file names, not PEM":      {`server_key: "/etc/key.pem" server_cert: "/etc/cert.pem"`, "server_cert and server_key"},
		"not a text proto":         {`{"server_key": "x"}`, "text format"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := serve.ReadSSLConfig(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, path, c.want)
			}
		})
	}
}

// startTLS runs serve.Run over TLS for the plus model and returns the REST
// and gRPC addresses.
func startTLS(t *testing.T, cfg *tls.Config) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base := t.TempDir()
	for _, f := range []string{"1/saved_model.pb", "1/variables/variables.index"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(base, f)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := serving.New(ctx, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 4}}, func(context.Context, string) (serving.Model, error) { return plus{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	opts := serve.DefaultOptions()
	opts.RESTPort, opts.GRPCPort, opts.Logger, opts.TLS = 0, 0, slog.New(slog.DiscardHandler), cfg
	addrs := make(chan [2]net.Addr, 1)
	opts.OnListen = func(rest, grpcAddr net.Addr) { addrs <- [2]net.Addr{rest, grpcAddr} }
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, srv, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	a := <-addrs
	return a[0].String(), a[1].String()
}
