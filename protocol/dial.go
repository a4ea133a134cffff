package protocol

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Transports a DialConfig or ListenConfig may name.
const (
	TransportTCP = "tcp" // raw TCP, the default
	TransportTLS = "tls" // TLS over TCP
	TransportWS  = "ws"  // WebSocket
	TransportWSS = "wss" // WebSocket over TLS
)

// Defaults of DialConfig and ListenConfig.
const (
	DefaultKeepAlive   = 15 * time.Second
	DefaultDialTimeout = 15 * time.Second
	DefaultWSPath      = "/"
)

// TLSConfig says how the client side of a TLS connection checks the server
// and proves itself. The server is verified against CAFile if set, else
// against the system roots; PinSHA256, if set, must also match (and alone
// replaces the chain check, for self-signed server certificates).
type TLSConfig struct {
	// CAFile is a PEM file of the certificate authorities to trust.
	CAFile string
	// PinSHA256 is the hex SHA-256 of the server certificate (its DER
	// bytes), colons and case ignored, e.g. the output of
	// `openssl x509 -noout -fingerprint -sha256`.
	PinSHA256 string
	// CertFile and KeyFile are a PEM client certificate and key, sent when
	// the server asks for one. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name checked in the server certificate; default
	// the host of the address dialled.
	ServerName string
	// InsecureSkipVerify turns off every check of the server. For tests
	// only.
	InsecureSkipVerify bool
}

// DialConfig says how to reach the server. Zero values mean the documented
// defaults.
type DialConfig struct {
	// Address is "host:port".
	Address string
	// Transport is TransportTCP (default), TransportTLS, TransportWS or
	// TransportWSS.
	Transport string
	// Path is the WebSocket request path; default DefaultWSPath.
	Path string
	// TLS configures TransportTLS and TransportWSS.
	TLS TLSConfig
	// Timeout bounds connecting and handshakes; default DefaultDialTimeout.
	Timeout time.Duration
	// KeepAlive is the TCP keep-alive period; default DefaultKeepAlive,
	// negative turns keep-alives off.
	KeepAlive time.Duration
	// MaxMessageSize bounds each incoming message, in bytes; default
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// Spool, if set, keeps the long strings of incoming messages out of
	// memory on TransportTCP and TransportTLS (see Spool; give the same
	// Spool to the Peer). WebSocket messages are read whole.
	Spool *Spool
}

// Dial connects to the server as cfg says and returns the connection,
// ready for NewPeer. It blocks until connected, ctx ends or the timeout
// passes. The caller owns the Conn and closes it (or lets Peer.Run do so).
func Dial(ctx context.Context, cfg DialConfig) (Conn, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDialTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Path == "" {
		cfg.Path = DefaultWSPath
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	dialer := &net.Dialer{KeepAlive: cfg.KeepAlive}

	var tlsConf *tls.Config
	if cfg.Transport == TransportTLS || cfg.Transport == TransportWSS {
		c, err := cfg.TLS.clientConfig(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("dial %s %s: %w", cfg.Transport, cfg.Address, err)
		}
		tlsConf = c
	}
	switch cfg.Transport {
	case "", TransportTCP:
		c, err := dialer.DialContext(ctx, "tcp", cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("dial tcp %s: %w", cfg.Address, err)
		}
		return newStreamConn(c, cfg.MaxMessageSize, cfg.Spool), nil
	case TransportTLS:
		td := &tls.Dialer{NetDialer: dialer, Config: tlsConf}
		c, err := td.DialContext(ctx, "tcp", cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("dial tls %s: %w", cfg.Address, err)
		}
		return newStreamConn(c, cfg.MaxMessageSize, cfg.Spool), nil
	case TransportWS, TransportWSS:
		return dialWS(ctx, cfg, dialer, tlsConf)
	}
	return nil, fmt.Errorf("dial %s: unknown transport %q (want tcp, tls, ws or wss)", cfg.Address, cfg.Transport)
}

func dialWS(ctx context.Context, cfg DialConfig, dialer *net.Dialer, tlsConf *tls.Config) (Conn, error) {
	var (
		mu            sync.Mutex
		local, remote net.Addr
	)
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				local, remote = c.LocalAddr(), c.RemoteAddr()
				mu.Unlock()
			}
			return c, err
		},
		TLSClientConfig:   tlsConf,
		ForceAttemptHTTP2: false,
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	path := cfg.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := cfg.Transport + "://" + cfg.Address + path
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return NewWSConn(ws, cfg.MaxMessageSize, local, remote), nil
}

func (t TLSConfig) clientConfig(address string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("server name from address: %w", err)
		}
		c.ServerName = host
	}
	if t.CAFile != "" {
		pool, err := loadCertPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("client certificate needs both cert_file and key_file")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	switch {
	case t.InsecureSkipVerify:
		c.InsecureSkipVerify = true
	case t.PinSHA256 != "":
		pin, err := parsePin(t.PinSHA256)
		if err != nil {
			return nil, err
		}
		// The pin replaces the chain check unless a CA file is given too;
		// either way the handshake fails unless the leaf matches.
		chain := t.CAFile != ""
		c.InsecureSkipVerify = true
		roots, name := c.RootCAs, c.ServerName
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if sum := sha256.Sum256(leaf.Raw); string(sum[:]) != string(pin) {
				return fmt.Errorf("server certificate sha256 %x does not match the pinned %x", sum, pin)
			}
			if !chain {
				return nil
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
			return err
		}
	}
	return c, nil
}

func parsePin(s string) ([]byte, error) {
	h := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
	pin, err := hex.DecodeString(h)
	if err != nil || len(pin) != sha256.Size {
		return nil, fmt.Errorf("pin_sha256 %q is not 64 hex digits", s)
	}
	return pin, nil
}

func loadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// ListenTLSConfig is the server side of TLS.
type ListenTLSConfig struct {
	// CertFile and KeyFile are the PEM server certificate and key.
	CertFile, KeyFile string
	// ClientCAFile, if set, is a PEM file of the authorities that sign
	// client certificates; clients must then present a valid one.
	ClientCAFile string
}

// ListenConfig says where and how to accept connections. Zero values mean
// the documented defaults.
type ListenConfig struct {
	// Address is "host:port" to listen on; port 0 picks a free one (see
	// Listener.Addr).
	Address string
	// Transport is TransportTCP (default), TransportTLS, TransportWS or
	// TransportWSS.
	Transport string
	// Path is the WebSocket path served; default DefaultWSPath. Other
	// paths get 404.
	Path string
	// TLS configures TransportTLS and TransportWSS.
	TLS ListenTLSConfig
	// KeepAlive is the TCP keep-alive period of accepted connections;
	// default DefaultKeepAlive, negative turns keep-alives off.
	KeepAlive time.Duration
	// MaxMessageSize bounds each incoming message, in bytes; default
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// Spool, if set, keeps the long strings of incoming messages out of
	// memory on TransportTCP and TransportTLS (see Spool; give the same
	// Spool to each Peer). WebSocket messages are read whole.
	Spool *Spool
	// HandshakeTimeout bounds the TLS and WebSocket handshakes of each
	// accepted connection; default DefaultDialTimeout.
	HandshakeTimeout time.Duration
}

// Listener accepts connections for any transport. For TLS it runs each
// handshake in its own goroutine, and for WebSocket an HTTP server that
// upgrades requests on the configured path, so a slow client never holds
// up Accept. Close stops it.
type Listener struct {
	cfg    ListenConfig
	ln     net.Listener
	conns  chan Conn // tls, ws and wss: connections ready for Accept
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	served chan struct{} // closed when the background goroutines are done
}

// Listen starts listening as cfg says. The caller must Close the Listener;
// connections already accepted stay open.
func Listen(ctx context.Context, cfg ListenConfig) (*Listener, error) {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultDialTimeout
	}
	if cfg.Path == "" {
		cfg.Path = DefaultWSPath
	}
	switch cfg.Transport {
	case "", TransportTCP, TransportTLS, TransportWS, TransportWSS:
	default:
		return nil, fmt.Errorf("listen %s: unknown transport %q (want tcp, tls, ws or wss)", cfg.Address, cfg.Transport)
	}
	var tlsConf *tls.Config
	if cfg.Transport == TransportTLS || cfg.Transport == TransportWSS {
		c, err := cfg.TLS.serverConfig()
		if err != nil {
			return nil, fmt.Errorf("listen %s %s: %w", cfg.Transport, cfg.Address, err)
		}
		tlsConf = c
	}
	lc := net.ListenConfig{KeepAlive: cfg.KeepAlive}
	ln, err := lc.Listen(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", cfg.Transport, cfg.Address, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	l := &Listener{cfg: cfg, ln: ln, served: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	switch cfg.Transport {
	case TransportWS, TransportWSS:
		l.conns = make(chan Conn)
		mux := http.NewServeMux()
		mux.HandleFunc(cfg.Path, l.serveWS)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.HandshakeTimeout, ErrorLog: log.New(io.Discard, "", 0)}
		go func() {
			defer close(l.served)
			srv.Serve(ln)
		}()
	case TransportTLS:
		l.conns = make(chan Conn)
		go l.acceptTLS()
	default:
		close(l.served)
	}
	return l, nil
}

// maxHandshakes bounds the TLS handshakes a Listener runs at once.
const maxHandshakes = 64

// acceptTLS accepts connections and hands each to Accept once its
// handshake succeeds; a failed handshake only closes that connection.
func (l *Listener) acceptTLS() {
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxHandshakes) // bounds handshakes in progress
	defer close(l.served)
	defer wg.Wait()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			// Out of descriptors and the like: wait, as net/http does.
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case slots <- struct{}{}:
		case <-l.ctx.Done():
			c.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer func() {
				<-slots
				wg.Done()
			}()
			ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
			defer cancel()
			if err := c.(*tls.Conn).HandshakeContext(ctx); err != nil {
				c.Close()
				return
			}
			l.hand(newStreamConn(c, l.cfg.MaxMessageSize, l.cfg.Spool))
		}()
	}
}

// hand passes c to Accept, or closes it if the Listener closes first. It
// reports whether Accept took it.
func (l *Listener) hand(c Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.ctx.Done():
		c.Close()
		return false
	}
}

func (t ListenTLSConfig) serverConfig() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("TLS needs cert_file and key_file")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pool, err := loadCertPool(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// serveWS upgrades one request and hands the connection to Accept; it
// returns when the connection is closed, so the request's resources live
// as long as the connection.
func (l *Listener) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.cfg.Path {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the client
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		local = l.ln.Addr()
	}
	var remote net.Addr = wsAddr(r.RemoteAddr)
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		remote = a
	}
	c := NewWSConn(ws, l.cfg.MaxMessageSize, local, remote)
	if l.hand(c) {
		<-c.closed
	}
}

// Accept blocks until a connection arrives, its TLS or WebSocket handshake
// done, or the Listener is closed (then the error wraps ErrClosed). The
// caller owns the Conn. Accept may be called from several goroutines.
func (l *Listener) Accept() (Conn, error) {
	if l.conns != nil {
		select {
		case c := <-l.conns:
			return c, nil
		case <-l.ctx.Done():
			return nil, fmt.Errorf("accept: %w", ErrClosed)
		}
	}
	c, err := l.ln.Accept()
	if err != nil {
		if l.ctx.Err() != nil {
			return nil, fmt.Errorf("accept: %w", ErrClosed)
		}
		return nil, fmt.Errorf("accept: %w", err)
	}
	return newStreamConn(c, l.cfg.MaxMessageSize, l.cfg.Spool), nil
}

// Addr returns the address the Listener listens on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening and waits for the Listener's goroutines. It is
// idempotent. Accepted connections stay open.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		<-l.served
	})
	return err
}

// wsAddr is a remote address that net could not parse, kept as text.
type wsAddr string

// Network implements net.Addr.
func (a wsAddr) Network() string { return "tcp" }

// String implements net.Addr.
func (a wsAddr) String() string { return string(a) }
