package admin_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"termagent/cmd/termserver/internal/admin"
	"termagent/cmd/termserver/internal/server"
	"termagent/cmd/termserver/internal/servertest"
	"termagent/protocol"
)

func TestListen_refusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0", "nonsense"} {
		if ln, err := admin.Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
	ln, err := admin.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestAdmin_rejectsBadCalls(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	servertest.Terminal(t, s.Addr("tcp"), "tcp", "T1")
	servertest.WaitFor(t, "the terminal", func() bool { return len(s.Terminals()) == 1 })
	ac := s.Client()
	ctx := context.Background()
	for _, c := range []struct {
		body string
		want string
	}{
		{`not json`, "decode request"},
		{`{"session_id":"x"}`, "no mod"},
		{`{"mod":"download_person","person_info":{"person_id":"1","face":{"length":5,"data":"AAAA"}}}`, "length"},
	} {
		err := ac.Do(ctx, "POST", "/v1/call", map[string][]string{"to": {"T1"}}, []byte(c.body), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("call %s: %v; want an error mentioning %q", c.body, err, c.want)
		}
	}
	big := bytes.Repeat([]byte("x"), admin.MaxBody+10)
	if err := ac.Do(ctx, "POST", "/v1/call", nil, big, nil); err == nil {
		t.Error("oversized admin body accepted")
	}
	if _, err := ac.Call(ctx, "nobody", protocol.NewRequest(protocol.ModGetDeviceInfo)); err == nil || !strings.Contains(err.Error(), "no such terminal") {
		t.Errorf("call to an unknown terminal: %v", err)
	}
	if err := ac.Do(ctx, "GET", "/v1/records", map[string][]string{"limit": {"-3"}}, nil, nil); err == nil {
		t.Error("records with limit -3 accepted")
	}
}

// TestHostileAdmin_refusesBrowserAndUnauthenticatedRequests sends what a
// web page in a browser on the server's host can send: a text/plain POST
// with an Origin, which opened the door before the admin endpoint had a
// token. It and every other request without the token must not reach a
// terminal.
func TestHostileAdmin_refusesBrowserAndUnauthenticatedRequests(t *testing.T) {
	s := servertest.Start(t, server.Config{})
	var opened atomic.Int32
	servertest.Terminal(t, s.Addr("tcp"), "tcp", "T-door", func(mux *protocol.Mux) {
		mux.HandleFunc(protocol.ModSendUserCommand, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
			opened.Add(1)
			return req.Reply(protocol.CodeOK, ""), nil
		})
	})
	servertest.WaitFor(t, "the terminal", func() bool { return len(s.Terminals()) == 1 && s.Terminals()[0].UUID == "T-door" })
	body := `{"mod":"send_user_command","session_id":"","type":1,"command_type":1,"command_value":""}`
	post := func(hdr map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+s.Admin+"/v1/call?to=all", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := "Bearer " + s.Token
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"text/plain from a web page (a browser's simple request)", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"a web page that somehow has the token", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example", "Authorization": bearer}, http.StatusForbidden},
		{"cross-site fetch metadata", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Authorization": bearer}, http.StatusForbidden},
		{"no token", map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + strings.Repeat("0", 64)}, http.StatusUnauthorized},
		{"token, but text/plain", map[string]string{"Content-Type": "text/plain", "Authorization": bearer}, http.StatusUnsupportedMediaType},
		{"token, form", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": bearer}, http.StatusUnsupportedMediaType},
	} {
		if got := post(c.hdr); got != c.want {
			t.Errorf("%s: status %d; want %d", c.name, got, c.want)
		}
	}
	if n := opened.Load(); n != 0 {
		t.Errorf("the door was opened %d time(s) by refused requests", n)
	}
	// The CLI's own request passes: the guard is not simply closed.
	open := protocol.NewRequest(protocol.ModSendUserCommand)
	open.CommandType = 1
	if res, err := s.Client().Call(context.Background(), "T-door", open); err != nil || len(res) != 1 || !res[0].OK() {
		t.Fatalf("the token holder is refused: %+v, %v", res, err)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the token holder's open reached the terminal %d time(s); want 1", n)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "admin call from a web page (Origin, text/plain) or without the token",
		"refused 403/401/415 before any terminal is called", "7 hostile requests, 0 reached the terminal")
}
