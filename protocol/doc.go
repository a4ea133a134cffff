// Package protocol is the V1.0 wire layer between a terminal and its
// management server: the message types, the JSON-object stream framing,
// the transports (raw TCP, TLS, WebSocket) and the duplex request/response
// Peer that both the terminal agent and the reference server stand on.
//
// The binding reading of the protocol is protocol/PROTOCOL.md, next to
// this file; it reads the original V1.0 document (in Chinese).
//
// Import rule: protocol imports neither agent, store nor hal. It knows
// nothing of reconnecting or of what a request means: a reconnect manager
// above it dials, runs a Peer until it fails, and dials again; handlers
// above it carry requests out. Codecs (Reader, Decode, Marshal) are pure;
// Peer and Listener are the only parts with goroutines, and the only ones
// that log.
//
// # Layers
//
//   - Message, Decode, Marshal: one flat struct for every mod, decoded
//     leniently where PROTOCOL.md §3 allows (numbers as numeric strings,
//     integers for strings, ret/msg for code/message, unknown fields
//     ignored) and strictly elsewhere (a key twice, invalid UTF-8, a lone
//     surrogate, NUL, a value of the wrong kind: an error naming the
//     field), and encoded with the documented names.
//   - Reader: splits a byte stream into JSON objects, bounded by a maximum
//     message size and nesting depth, resynchronising after garbage and
//     mismatched brackets.
//   - Spool: keeps the long strings of a message (the base64 biometrics
//     of download_person) out of memory. A Reader with a Spool writes each
//     string of 256 KiB or more to a nameless 0600 file (O_TMPFILE) in the
//     spool's directory as it arrives and hands on a placeholder;
//     Spool.Decode checks a blob's data by streaming it through base64 and
//     leaves it in the file (Biometric.Open reads it, Message.Close
//     releases it), and puts anything else back together for Decode, so
//     every refusal is Decode's, word for word (FuzzSpool). A 16 MiB
//     download_person then costs a few hundred KiB of memory instead of
//     three copies of itself; a refused, dropped or killed one leaves
//     nothing on disk. WebSocket messages are read whole.
//   - Conn: one message in, one message out, over a byte stream
//     (StreamConn) or a WebSocket (WSConn); Dial and Listen make them.
//   - Peer: Call sends a request and waits for the response with the same
//     session_id; incoming requests go to a Handler (often a Mux), up to
//     MaxInFlight at once, MaxQueued more waiting, beyond that answered
//     "busy"; every request read gets exactly one response. The reader
//     never waits for a handler, so a handler may itself Call; it waits
//     only for the writer when answers pile up (backpressure on a side
//     that floods). MaxCallTimeouts unanswered calls in a row, or a write
//     that WriteTimeout ends, stop a Peer on a half-open link. A handler
//     acts after its reply is written with AfterReply. Errors tell
//     ErrNotSent (never left: retry anywhere) from ErrNoResponse (may
//     have arrived) and a *RemoteError (the other side answered a
//     non-zero code).
//
// # Using the package
//
// A client (the terminal, by default) dials and calls:
//
//	conn, err := protocol.Dial(ctx, protocol.DialConfig{Address: "192.168.1.166:49003"})
//	if err != nil { ... }
//	mux := protocol.NewMux()
//	mux.HandleFunc(protocol.ModGetDeviceInfo, func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
//		resp := req.Reply(protocol.CodeOK, "")
//		resp.DeviceInfo = &protocol.DeviceInfo{UUID: "31231412332" /* ... */}
//		return resp, nil
//	})
//	peer := protocol.NewPeer(conn, protocol.PeerConfig{Handler: mux, Logger: log})
//	go peer.Run(ctx) // until the connection ends; a manager then redials
//
//	req := protocol.NewRequest(protocol.ModUploadAccessInfo)
//	req.SessionID = record.ID // keep the id across retries
//	req.AccessInfo = &protocol.AccessInfo{PersonID: "3413123123", Time: "20190823123435"}
//	_, err = peer.Call(ctx, req)
//	var remote *protocol.RemoteError
//	switch {
//	case err == nil: // acknowledged: remove from the outbox
//	case errors.As(err, &remote): // the server answered remote.Code
//	case errors.Is(err, protocol.ErrNotSent): // never left: retry freely
//	case errors.Is(err, protocol.ErrNoResponse): // may have arrived: retry with the same id
//	}
//
// A server (or the terminal in listen mode) accepts and handles:
//
//	ln, err := protocol.Listen(ctx, protocol.ListenConfig{Address: ":49003"})
//	if err != nil { ... }
//	defer ln.Close()
//	for {
//		conn, err := ln.Accept()
//		if err != nil { return err }
//		peer := protocol.NewPeer(conn, protocol.PeerConfig{Handler: mux})
//		go peer.Run(ctx) // peer.Call(ctx, protocol.NewRequest(protocol.ModGetDeviceInfo)) from here on
//	}
package protocol
