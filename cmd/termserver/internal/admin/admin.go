// Package admin is termserver's admin endpoint, HTTP/JSON on loopback, and
// its client: the operator's commands (list, push, records, faults...)
// reach a running server through it (Serve, Client).
//
// Import rule: it imports protocol and its siblings server, recordstore
// and faults; only the termserver command (and servertest) import it.
//
// # Routes
//
//	GET  /v1/terminals              []server.TerminalStatus
//	POST /v1/call?to=NAME           body: a protocol request (mod + body);
//	                                 → []server.CallResult, one per terminal
//	POST /v1/drop?to=NAME           close connections → []string
//	GET  /v1/records?terminal=&after=&limit=&newest=true   []recordstore.Record
//	GET  /v1/records.csv?terminal=  CSV export
//	GET  /v1/stats                  server.Stats
//	GET  /v1/faults, POST /v1/faults?fail=&delay=&drop_every=&refuse=
//
// NAME is "all", a uuid, a unique uuid prefix or a remote address.
//
// # What protects it
//
// The endpoint can open every connected terminal's door
// (send_user_command) and rewrite its persons, so it listens on loopback
// only, and every request must carry the token serve writes at start to a
// 0600 file in a 0700 directory (Authorization: Bearer TOKEN): other users
// of the machine cannot read it. A web page open in a browser on the same
// machine cannot read it either, and could still send a "simple" cross-site
// request, so requests with an Origin header or Sec-Fetch-Site: cross-site
// are refused (the CLI sends neither) and a POST must be
// Content-Type: application/json, which a browser sends cross-origin only
// after a CORS preflight this endpoint never grants.
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"termagent/cmd/termserver/internal/faults"
	"termagent/cmd/termserver/internal/recordstore"
	"termagent/cmd/termserver/internal/server"
	"termagent/protocol"
)

// DefaultAddr is the admin endpoint's default address. It must be a
// loopback address.
const DefaultAddr = "127.0.0.1:49005"

// MaxBody bounds an admin request body (a download_person with five base64
// blobs is about 1 MiB; allow the protocol's own limit).
const MaxBody = protocol.DefaultMaxMessageSize

// Listen listens on addr, refusing (server.ErrConfig) any address that is
// not loopback.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q is not loopback (the admin endpoint is for this machine only): %w", addr, server.ErrConfig)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves the admin endpoint of s on ln until ctx is done, then
// closes ln; every request must carry token (see NewToken).
func Serve(ctx context.Context, s *server.Server, ln net.Listener, token string) error {
	if len(token) < minTokenLen {
		return fmt.Errorf("admin token of %d characters: want at least %d: %w", len(token), minTokenLen, server.ErrConfig)
	}
	hs := &http.Server{Handler: guard(token, handler(s)), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin: %w", err)
	}
	return nil
}

// guard refuses, before next sees them, requests a browser could have
// sent for a web page (Origin, Sec-Fetch-Site: cross-site), requests without
// the token, and POSTs that are not application/json.
func guard(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" || r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "cross-origin requests are refused (origin "+strconv.Quote(o)+")", http.StatusForbidden)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "missing or wrong admin token (Authorization: Bearer, from the token file termserver serve wrote)", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				http.Error(w, "a POST must be Content-Type: application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// minTokenLen is the shortest admin token accepted (NewToken makes 64).
const minTokenLen = 32

// NewToken returns a random admin token: 32 bytes, hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// StateDir is where serve keeps its database and admin tokens by default:
// $XDG_STATE_HOME/termserver, or ~/.local/state/termserver.
func StateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "termserver"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory (set XDG_STATE_HOME or HOME, or give -db and -token-file): %w", err)
	}
	return filepath.Join(home, ".local", "state", "termserver"), nil
}

// DefaultTokenFile is the token file of the admin endpoint at addr:
// STATEDIR/admin-HOST-PORT.token, so servers on different admin ports
// (tests, demos) never share one.
func DefaultTokenFile(addr string) (string, error) {
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	name := "admin-" + strings.NewReplacer(":", "-", "[", "", "]", "", "/", "_").Replace(addr) + ".token"
	return filepath.Join(dir, name), nil
}

// WriteToken writes token to path (mode 0600, directory created 0700),
// replacing the file atomically.
func WriteToken(path, token string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("admin token %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("admin token %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("admin token %s: %w", path, err)
	}
	return nil
}

// ReadToken reads an admin token file.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token (is termserver serve running, as this user?): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// handler serves the routes listed at the top of this file.
func handler(s *server.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/terminals", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Terminals())
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("POST /v1/call", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			http.Error(w, "read request: "+err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		req, err := protocol.Decode(body)
		if err != nil {
			http.Error(w, "decode request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Mod == "" {
			http.Error(w, "request has no mod", http.StatusBadRequest)
			return
		}
		req.SessionID = "x" // Validate wants one; Call gives each its own
		req.Type = protocol.TypeRequest
		req.HasCode = false
		if err := req.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := s.Call(r.Context(), r.URL.Query().Get("to"), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, res)
	})
	mux.HandleFunc("POST /v1/drop", func(w http.ResponseWriter, r *http.Request) {
		dropped, err := s.Drop(r.URL.Query().Get("to"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, dropped)
	})
	// records answers with the records the query selects, written out by
	// write.
	records := func(write func(http.ResponseWriter, []recordstore.Record)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f, err := parseFilter(r.URL.Query())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			recs, err := s.Records().List(r.Context(), f)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			write(w, recs)
		}
	}
	mux.HandleFunc("GET /v1/records", records(func(w http.ResponseWriter, recs []recordstore.Record) {
		if recs == nil {
			recs = []recordstore.Record{}
		}
		writeJSON(w, recs)
	}))
	mux.HandleFunc("GET /v1/records.csv", records(func(w http.ResponseWriter, recs []recordstore.Record) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		recordstore.WriteCSV(w, recs)
	}))
	mux.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Faults().Values())
	})
	mux.HandleFunc("POST /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		f, err := faults.Parse(s.Faults(), r.URL.Query())
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, f.Values())
	})
	return mux
}

func parseFilter(q url.Values) (recordstore.Filter, error) {
	f := recordstore.Filter{Terminal: q.Get("terminal"), Newest: q.Get("newest") == "true"}
	var err error
	if s := q.Get("after"); s != "" {
		if f.AfterID, err = strconv.ParseInt(s, 10, 64); err != nil {
			return f, fmt.Errorf("after %q is not a record id", s)
		}
	}
	if s := q.Get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 0 {
			return f, fmt.Errorf("limit %q is not a count", s)
		}
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Client talks to a running server's admin endpoint. Safe for concurrent
// use once its fields are set.
type Client struct {
	base string // "http://127.0.0.1:49005"
	hc   *http.Client
	// Token authenticates the requests; "" reads TokenFile (or, when that
	// is "", DefaultTokenFile of the address) on each request.
	Token     string
	TokenFile string
}

// NewClient returns a Client of the admin endpoint at addr (host:port).
// Each request is bounded by 5 minutes (a push of many persons) and its
// context.
func NewClient(addr string) *Client {
	return &Client{base: "http://" + addr, hc: &http.Client{Timeout: 5 * time.Minute}}
}

// Do sends a request to path (with query q and body, if any) and decodes
// the JSON answer into out: nil discards it, an io.Writer receives it as
// it comes (records.csv). An answer other than 200 OK is an error carrying
// the endpoint's message.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	token := c.Token
	if token == "" {
		tf := c.TokenFile
		if tf == "" {
			var err error
			if tf, err = DefaultTokenFile(strings.TrimPrefix(c.base, "http://")); err != nil {
				return err
			}
		}
		var err error
		if token, err = ReadToken(tf); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s (is termserver running with -admin %s?): %w",
			method, path, strings.TrimPrefix(c.base, "http://"), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("admin %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Call sends req to the terminals named to (see server.Server.Call) and
// returns their answers.
func (c *Client) Call(ctx context.Context, to string, req *protocol.Message) ([]server.CallResult, error) {
	body, err := protocol.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", req.Mod, err)
	}
	var res []server.CallResult
	err = c.Do(ctx, http.MethodPost, "/v1/call", url.Values{"to": {to}}, body, &res)
	return res, err
}
