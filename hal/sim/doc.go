// Package sim is the hardware simulator: the module side of each device's
// wire protocol, stateful, spoken on pseudo-terminals so that the real hal
// drivers (hal/card, hal/fingerprint, hal/face, hal/door) run unchanged in
// tests, in the demo and on an integrator's desk. cmd/termsim wraps it in a
// command with a console, scenario files and a control socket.
//
// # Device convention
//
// Every simulated device follows the same shape, so cmd/termsim and tests
// can treat them alike:
//
//   - It is a struct built by NewX(cfg XConfig) with plain Config fields
//     (zero means the documented default). Its state (stored fingerprint
//     templates, enrolled faces, relay contact) lives in the struct and
//     outlives any one connection.
//   - It implements Device: Serve(ctx, port io.ReadWriter) error speaks the
//     module side of the protocol on port until ctx is done or port fails.
//     Serve never closes port; whoever opened it does. Serve bounds every
//     buffer, and ignores or answers with the module's own error code
//     whatever garbage the host sends; it never panics on input.
//   - Control methods model the outside world and are safe for concurrent
//     use with Serve: Swipe (a card enters the field), Place (a finger),
//     Show (a face), Noise (line noise), State (relay contact). A control
//     method that needs the wire (e.g. a card reader pushing a frame)
//     writes through the port of the current Serve and returns ErrUnplugged
//     while no Serve runs. Control methods take a context when they wait.
//   - Write raw bytes only through helpers that serialise with Serve's own
//     writes, so frames never interleave.
//
// # Pseudo-terminals and plugging
//
// OpenPTY makes a pseudo-terminal whose slave is already in raw mode; the
// simulator owns the master and a driver opens the slave path with the real
// serial library (hal/serialport). Attach runs a Device on a fresh PTY
// behind a stable symlink; Plug.Unplug closes the PTY and removes the link,
// so the driver's reads fail and its reopen attempts find nothing, and
// Plug.Replug makes a new PTY, re-points the link and serves again, so the
// driver's next reopen succeeds at the same path.
//
// # Control
//
// Control is a small line protocol on a unix socket (see cmd/termsim and
// Dial) through which tests, the demo and scripts drive a running
// simulator: one command line in, one reply line out.
//
// Import rule: sim imports hal only for shared types; it never imports the
// drivers it simulates, nor agent, store or protocol.
package sim
