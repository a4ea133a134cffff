package main

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
	"slices"
	"strconv"
	"strings"
	"time"

	"termagent/protocol"
)

// DefaultAdmin is the admin endpoint's default address. It must be a
// loopback address.
const DefaultAdmin = "127.0.0.1:49005"

// maxAdminBody bounds an admin request body (a download_person with five
// base64 blobs is about 1 MiB; allow the protocol's own limit).
const maxAdminBody = protocol.DefaultMaxMessageSize

// The admin endpoint is HTTP/JSON on loopback, the operator's tool:
//
//	GET  /v1/terminals              []TerminalStatus
//	POST /v1/call?to=NAME           body: a protocol request (mod + body);
//	                                 → []CallResult, one per terminal
//	POST /v1/drop?to=NAME           close connections → []string
//	GET  /v1/records?terminal=&after=&limit=&newest=true   []Record
//	GET  /v1/records.csv?terminal=  CSV export
//	GET  /v1/stats                  Stats
//	GET  /v1/faults, POST /v1/faults?fail=&delay=&drop_every=&refuse=
//
// NAME is "all", a uuid, a unique uuid prefix or a remote address.
//
// What protects it: the endpoint can open every connected terminal's door
// (send_user_command) and rewrite its persons, so it listens on loopback
// only, and every request must carry the token serve writes at start to a
// 0600 file in a 0700 directory (Authorization: Bearer TOKEN): other users
// of the machine cannot read it. A web page open in a browser on the same
// machine cannot read it either, and could still send a "simple" cross-site
// request, so requests with an Origin header or Sec-Fetch-Site: cross-site
// are refused (the CLI sends neither) and a POST must be
// Content-Type: application/json, which a browser sends cross-origin only
// after a CORS preflight this endpoint never grants.

// listenAdmin listens on addr, refusing any address that is not loopback.
func listenAdmin(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q is not loopback (the admin endpoint is for this machine only): %w", addr, ErrConfig)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", addr, err)
	}
	return ln, nil
}

// serveAdmin serves the admin endpoint on ln until ctx is done; every
// request must carry token.
func serveAdmin(ctx context.Context, s *Server, ln net.Listener, token string) error {
	if len(token) < minTokenLen {
		return fmt.Errorf("admin token of %d characters: want at least %d: %w", len(token), minTokenLen, ErrConfig)
	}
	hs := &http.Server{Handler: guardAdmin(token, adminHandler(s)), ReadHeaderTimeout: 10 * time.Second}
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

// guardAdmin refuses, before next sees them, requests a browser could have
// sent for a web page (Origin, Sec-Fetch-Site: cross-site), requests without
// the token, and POSTs that are not application/json.
func guardAdmin(token string, next http.Handler) http.Handler {
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

// minTokenLen is the shortest admin token accepted (newToken makes 64).
const minTokenLen = 32

// newToken returns a random admin token: 32 bytes, hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// stateDir is where serve keeps its database and admin tokens by default:
// $XDG_STATE_HOME/termserver, or ~/.local/state/termserver.
func stateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "termserver"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory (set XDG_STATE_HOME or HOME, or give -db and -token-file): %w", err)
	}
	return filepath.Join(home, ".local", "state", "termserver"), nil
}

// defaultTokenFile is the token file of the admin endpoint at addr:
// STATEDIR/admin-HOST-PORT.token, so servers on different admin ports
// (tests, demos) never share one.
func defaultTokenFile(addr string) (string, error) {
	dir, err := stateDir()
	if err != nil {
		return "", err
	}
	name := "admin-" + strings.NewReplacer(":", "-", "[", "", "]", "", "/", "_").Replace(addr) + ".token"
	return filepath.Join(dir, name), nil
}

// writeToken writes token to path (mode 0600, directory created 0700),
// replacing the file atomically.
func writeToken(path, token string) error {
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

// readToken reads an admin token file.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token (is termserver serve running, as this user?): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func adminHandler(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/terminals", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Terminals())
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("POST /v1/call", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
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
		if p := req.PersonInfo; req.Mod == protocol.ModDownloadPerson && p != nil && slices.ContainsFunc(res, CallResult.OK) {
			if err := s.records.SetPersonName(r.Context(), p.PersonID, p.PersonName); err != nil {
				s.log.Warn().Err(err).Msg("admin: person name not kept")
			}
		}
		writeJSON(w, res)
	})
	mux.HandleFunc("POST /v1/drop", func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		if _, err := s.find(to); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, s.Drop(to))
	})
	mux.HandleFunc("GET /v1/records", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recs, err := s.records.List(r.Context(), f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if recs == nil {
			recs = []Record{}
		}
		writeJSON(w, recs)
	})
	mux.HandleFunc("GET /v1/records.csv", func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recs, err := s.records.List(r.Context(), f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		WriteCSV(w, recs)
	})
	mux.HandleFunc("GET /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Faults().Values())
	})
	mux.HandleFunc("POST /v1/faults", func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseFaults(s.Faults(), r.URL.Query())
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

func parseFilter(q url.Values) (RecordFilter, error) {
	f := RecordFilter{Terminal: q.Get("terminal"), Newest: q.Get("newest") == "true"}
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

// adminClient talks to a running server's admin endpoint. Safe for
// concurrent use once its fields are set.
type adminClient struct {
	base string // "http://127.0.0.1:49005"
	hc   *http.Client
	// token authenticates the requests; "" reads tokenFile (or the
	// default token file of the address) on each request.
	token     string
	tokenFile string
}

func newAdminClient(addr string) *adminClient {
	return &adminClient{base: "http://" + addr, hc: &http.Client{Timeout: 5 * time.Minute}}
}

// do sends a request and decodes the JSON answer into out (unless nil).
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	token := c.token
	if token == "" {
		tf := c.tokenFile
		if tf == "" {
			var err error
			if tf, err = defaultTokenFile(strings.TrimPrefix(c.base, "http://")); err != nil {
				return err
			}
		}
		var err error
		if token, err = readToken(tf); err != nil {
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

// call sends req to the terminals named to and returns their answers.
func (c *adminClient) call(ctx context.Context, to string, req *protocol.Message) ([]CallResult, error) {
	body, err := protocol.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", req.Mod, err)
	}
	var res []CallResult
	err = c.do(ctx, http.MethodPost, "/v1/call", url.Values{"to": {to}}, body, &res)
	return res, err
}
