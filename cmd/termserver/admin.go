package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"termagent/protocol"
)

// DefaultAdmin is the admin endpoint's default address. It must be a
// loopback address: the endpoint has no authentication.
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
//	GET  /v1/records?terminal=&after=&limit=   []Record
//	GET  /v1/records.csv?terminal=  CSV export
//	GET  /v1/stats                  Stats
//	GET  /v1/faults, POST /v1/faults?fail=&delay=&drop_every=&refuse=
//
// NAME is "all", a uuid, a unique uuid prefix or a remote address.

// listenAdmin listens on addr, refusing any address that is not loopback.
func listenAdmin(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q is not loopback (the endpoint has no authentication): %w", addr, ErrConfig)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", addr, err)
	}
	return ln, nil
}

// serveAdmin serves the admin endpoint on ln until ctx is done.
func serveAdmin(ctx context.Context, s *Server, ln net.Listener) error {
	hs := &http.Server{Handler: adminHandler(s), ReadHeaderTimeout: 10 * time.Second}
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
	f := RecordFilter{Terminal: q.Get("terminal")}
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
// concurrent use.
type adminClient struct {
	base string // "http://127.0.0.1:49005"
	hc   *http.Client
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
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
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
