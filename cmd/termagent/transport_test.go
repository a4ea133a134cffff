package main

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
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/haltest"
	"termagent/protocol"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their paths and the certificate's SHA-256 pin.
func selfSigned(t *testing.T) (certFile, keyFile, pin string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "termserver test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return certFile, keyFile, hex.EncodeToString(sum[:])
}

// getDeviceInfo asks the terminal on peer for its device info.
func getDeviceInfo(t *testing.T, peer *protocol.Peer) *protocol.DeviceInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := peer.Call(ctx, protocol.NewRequest(protocol.ModGetDeviceInfo))
	if err != nil {
		t.Fatalf("get_device_info: %v", err)
	}
	if resp.DeviceInfo == nil {
		t.Fatal("get_device_info without device_info")
	}
	return resp.DeviceInfo
}

// The transports and the TLS settings of the file reach the link: the
// daemon dials a TLS and a WSS server whose self-signed certificate it
// knows only by its pin, and a plain WebSocket server on a custom path.
func TestDaemonTransports(t *testing.T) {
	cert, key, pin := selfSigned(t)
	for _, c := range []struct {
		transport, path string
	}{
		{"tls", ""},
		{"ws", "/terminal"},
		{"wss", "/terminal"},
	} {
		t.Run(c.transport, func(t *testing.T) {
			srv := startServerConfig(t, protocol.ListenConfig{
				Address: "127.0.0.1:0", Transport: c.transport, Path: c.path,
				TLS: protocol.ListenTLSConfig{CertFile: cert, KeyFile: key},
			})
			server := "  transport: " + c.transport + "\n"
			if c.path != "" {
				server += "  ws_path: " + c.path + "\n"
			}
			if strings.HasPrefix(c.transport, "tls") || c.transport == "wss" {
				server += "  tls:\n    pin_sha256: \"" + pin + "\"\n"
			}
			r := newRigOpts(t, srv.addr, rigOpts{server: server})
			r.start()
			info := getDeviceInfo(t, srv.nextPeer())
			if info.SoftwareVersion != testVersion || info.DeviceIP != "127.0.0.1" {
				t.Errorf("device_info over %s: %+v", c.transport, info)
			}
		})
	}
}

// A server whose certificate does not match the pin is never talked to.
func TestDaemonTLSWrongPin(t *testing.T) {
	cert, key, _ := selfSigned(t)
	srv := startServerConfig(t, protocol.ListenConfig{
		Address: "127.0.0.1:0", Transport: "tls", TLS: protocol.ListenTLSConfig{CertFile: cert, KeyFile: key},
	})
	wrong := strings.Repeat("ab", 32)
	r := newRigOpts(t, srv.addr, rigOpts{server: "  transport: tls\n  tls:\n    pin_sha256: " + wrong + "\n"})
	r.start()
	st := r.waitStatus("a refused handshake", func(s agent.Status) bool {
		return strings.Contains(s.LastError, "does not match the pinned")
	})
	if st.Link == agent.LinkUp {
		t.Errorf("link up with a wrong pin: %+v", st)
	}
	select {
	case <-srv.peers:
		t.Error("the server got a working connection from a terminal with a wrong pin")
	default:
	}
}

// Listen mode through the binary: the terminal accepts the server's
// connection on device_port, only from the allowed addresses.
func TestDaemonListenMode(t *testing.T) {
	for _, c := range []struct {
		allow   string
		allowed bool
	}{{"127.0.0.1", true}, {"127.0.0.2", false}} {
		t.Run(c.allow, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()

			r := newRigOpts(t, "127.0.0.1:9", rigOpts{server: fmt.Sprintf(
				"  listen:\n    enabled: true\n    host: 127.0.0.1\n    device_port: %d\n    allow: [%s]\n", port, c.allow)})
			r.start()
			addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
			var conn protocol.Conn
			haltest.Eventually(t, "the terminal to listen", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				conn, err = protocol.Dial(ctx, protocol.DialConfig{Address: addr})
				return err == nil
			})
			peer := protocol.NewPeer(conn, protocol.PeerConfig{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { peer.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			if !c.allowed {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := peer.Call(ctx, protocol.NewRequest(protocol.ModGetDeviceInfo)); err == nil {
					t.Error("a server outside listen.allow got an answer")
				}
				return
			}
			info := getDeviceInfo(t, peer)
			if info.DevicePort != port || info.SoftwareVersion != testVersion {
				t.Errorf("device_info in listen mode: %+v", info)
			}
		})
	}
}
