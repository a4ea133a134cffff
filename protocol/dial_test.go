package protocol

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a certificate authority with a server and a client
// certificate, generated per test and written as PEM files to a temp dir.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert, serverKey string
	serverSHA256          string // hex of the server certificate's DER
	clientCert, clientKey string
}

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string, der []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return p.write(t, cn+".pem", "CERTIFICATE", der), p.write(t, cn+".key", "EC PRIVATE KEY", keyDER), der
	}
	var der []byte
	p.serverCert, p.serverKey, der = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	sum := sha256.Sum256(der)
	p.serverSHA256 = hex.EncodeToString(sum[:])
	p.clientCert, p.clientKey, _ = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// roundTrip listens with lc, dials with dc and makes one call each way.
// It returns Dial's error, or the first call's.
func roundTrip(t *testing.T, lc ListenConfig, dc DialConfig) error {
	t.Helper()
	ctx := context.Background()
	lc.Address = "127.0.0.1:0"
	ln, err := Listen(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return // the listener closed: no client got through
		}
		accepted <- c
	}()
	dc.Address = ln.Addr().String()
	cc, err := Dial(ctx, dc)
	if err != nil {
		return err
	}
	cli := startPeer(t, ctx, cc, PeerConfig{Handler: echoMux("client"), CallTimeout: hangTimeout})
	req := NewRequest(ModSendUserCommand)
	req.CommandValue = "hello"
	callErr := make(chan error, 1)
	go func() {
		resp, err := cli.Call(ctx, req)
		if err == nil && resp.Text != "server" {
			err = errors.New("wrong response " + summary(resp))
		}
		callErr <- err
	}()
	var srv *runningPeer
	select {
	case sc := <-accepted:
		srv = startPeer(t, ctx, sc, PeerConfig{Handler: echoMux("server")})
	case err := <-callErr:
		return err // the handshake failed on the server side
	case <-time.After(hangTimeout):
		t.Fatal("no connection accepted")
	}
	if err := <-callErr; err != nil {
		return err
	}
	resp, err := srv.Call(ctx, NewRequest(ModSendUserCommand))
	if err != nil || resp.Text != "client" {
		t.Fatalf("server → client call = %s, %v", summary(resp), err)
	}
	if cli.Peer.RemoteAddr() == "" || srv.Peer.RemoteAddr() == "" || cli.Peer.LocalAddr() == "" {
		t.Errorf("addresses missing: %q %q %q", cli.Peer.RemoteAddr(), srv.Peer.RemoteAddr(), cli.Peer.LocalAddr())
	}
	return nil
}

func TestTLS(t *testing.T) {
	pki := newPKI(t, "good")
	other := newPKI(t, "other")
	serverTLS := ListenTLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey}
	mutualTLS := ListenTLSConfig{CertFile: pki.serverCert, KeyFile: pki.serverKey, ClientCAFile: pki.caFile}
	colons := strings.ToUpper(pki.serverSHA256[:2]) + ":" + pki.serverSHA256[2:]
	for _, tr := range []string{TransportTLS, TransportWSS} {
		tests := []struct {
			name    string
			server  ListenTLSConfig
			client  TLSConfig
			wantErr string // "" means the calls succeed
		}{
			{"CA file", serverTLS, TLSConfig{CAFile: pki.caFile}, ""},
			{"CA file and server name", serverTLS, TLSConfig{CAFile: pki.caFile, ServerName: "localhost"}, ""},
			{"wrong CA", serverTLS, TLSConfig{CAFile: other.caFile}, "certificate signed by unknown authority"},
			{"wrong server name", serverTLS, TLSConfig{CAFile: pki.caFile, ServerName: "example.com"}, "certificate is valid for"},
			{"system roots", serverTLS, TLSConfig{}, "unknown authority"},
			{"pin", serverTLS, TLSConfig{PinSHA256: pki.serverSHA256}, ""},
			{"pin with colons and case", serverTLS, TLSConfig{PinSHA256: colons}, ""},
			{"pin and CA", serverTLS, TLSConfig{PinSHA256: pki.serverSHA256, CAFile: pki.caFile}, ""},
			{"wrong pin", serverTLS, TLSConfig{PinSHA256: other.serverSHA256}, "does not match the pinned"},
			{"right pin, wrong CA", serverTLS, TLSConfig{PinSHA256: pki.serverSHA256, CAFile: other.caFile}, "unknown authority"},
			{"malformed pin", serverTLS, TLSConfig{PinSHA256: "abc"}, "not 64 hex digits"},
			{"client certificate", mutualTLS, TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, ""},
			{"client certificate missing", mutualTLS, TLSConfig{CAFile: pki.caFile}, "certificate required"},
			{"client certificate from another CA", mutualTLS, TLSConfig{CAFile: pki.caFile, CertFile: other.clientCert, KeyFile: other.clientKey}, "certificate required"},
			{"half a client certificate", serverTLS, TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert}, "both cert_file and key_file"},
		}
		for _, tt := range tests {
			t.Run(tr+"/"+tt.name, func(t *testing.T) {
				err := roundTrip(t, ListenConfig{Transport: tr, TLS: tt.server}, DialConfig{Transport: tr, TLS: tt.client, Timeout: hangTimeout})
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("error %v", err)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
				}
			})
		}
	}
}

func TestPlainTransports(t *testing.T) {
	for _, tr := range []string{"", TransportTCP, TransportWS} {
		t.Run(tr, func(t *testing.T) {
			if err := roundTrip(t, ListenConfig{Transport: tr}, DialConfig{Transport: tr}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("ws path", func(t *testing.T) {
		if err := roundTrip(t, ListenConfig{Transport: TransportWS, Path: "/terminal"}, DialConfig{Transport: TransportWS, Path: "terminal"}); err != nil {
			t.Fatal(err)
		}
		err := roundTrip(t, ListenConfig{Transport: TransportWS, Path: "/terminal"}, DialConfig{Transport: TransportWS, Path: "/other"})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("wrong path = %v; want a 404", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Dial(ctx, DialConfig{Address: "127.0.0.1:1", Transport: "udp"}); err == nil || !strings.Contains(err.Error(), `unknown transport "udp"`) {
		t.Errorf("Dial udp = %v", err)
	}
	if _, err := Listen(ctx, ListenConfig{Address: "127.0.0.1:0", Transport: "quic"}); err == nil || !strings.Contains(err.Error(), `unknown transport "quic"`) {
		t.Errorf("Listen quic = %v", err)
	}
	if _, err := Listen(ctx, ListenConfig{Address: "127.0.0.1:0", Transport: TransportTLS}); err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Errorf("Listen tls without a certificate = %v", err)
	}
	if _, err := Dial(ctx, DialConfig{Address: "127.0.0.1:0", Transport: TransportTLS, TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}); err == nil || !strings.Contains(err.Error(), "read CA file") {
		t.Errorf("Dial with a missing CA file = %v", err)
	}
	// Nothing listens on a just-closed port.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(ctx, DialConfig{Address: addr}); err == nil || !strings.Contains(err.Error(), "dial tcp "+addr) {
		t.Errorf("Dial to a closed port = %v", err)
	}
}

func TestListenerClose(t *testing.T) {
	for _, tr := range []string{TransportTCP, TransportWS} {
		t.Run(tr, func(t *testing.T) {
			ln, err := Listen(context.Background(), ListenConfig{Address: "127.0.0.1:0", Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 1)
			go func() {
				_, err := ln.Accept()
				errs <- err
			}()
			ln.Close()
			select {
			case err := <-errs:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("Accept after Close = %v; want ErrClosed", err)
				}
			case <-time.After(hangTimeout):
				t.Fatal("Close did not wake Accept")
			}
			if err := ln.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
		})
	}
}

// TestConnCloseWakesRead: Close is idempotent and wakes a blocked read.
func TestConnCloseWakesRead(t *testing.T) {
	for _, tr := range []string{TransportTCP, TransportWS} {
		t.Run(tr, func(t *testing.T) {
			ln, err := Listen(context.Background(), ListenConfig{Address: "127.0.0.1:0", Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					t.Cleanup(func() { c.Close() })
				}
			}()
			c, err := Dial(context.Background(), DialConfig{Address: ln.Addr().String(), Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 1)
			go func() {
				_, err := c.ReadMessage()
				errs <- err
			}()
			c.Close()
			select {
			case err := <-errs:
				if err == nil {
					t.Fatal("read returned a message")
				}
			case <-time.After(hangTimeout):
				t.Fatal("Close did not wake ReadMessage")
			}
			c.Close()
			if err := c.WriteMessage(context.Background(), []byte("{}")); err == nil {
				t.Fatal("write after Close succeeded")
			}
		})
	}
}
