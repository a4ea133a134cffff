package protocol

import (
	"context"
)

// Mux is a Handler that routes requests by mod. A request whose mod has no
// handler is answered CodeError `unsupported mod "x"` (PROTOCOL.md
// §5 "Anything else"). Register every mod before the Peer starts; a Mux is
// then safe for concurrent use.
type Mux struct {
	handlers map[string]Handler
}

var _ Handler = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: make(map[string]Handler)} }

// Handle routes requests of mod to h, replacing any earlier handler.
func (m *Mux) Handle(mod string, h Handler) { m.handlers[mod] = h }

// HandleFunc routes requests of mod to f.
func (m *Mux) HandleFunc(mod string, f func(ctx context.Context, req *Message) (*Message, error)) {
	m.handlers[mod] = HandlerFunc(f)
}

// ServeMessage implements Handler.
func (m *Mux) ServeMessage(ctx context.Context, req *Message) (*Message, error) {
	h, ok := m.handlers[req.Mod]
	if !ok {
		return nil, Errorf(CodeError, "unsupported mod %q", req.Mod)
	}
	return h.ServeMessage(ctx, req)
}
