// Package sim is the hardware simulator: the module side of each device's
// wire protocol, stateful, spoken on pseudo-terminals so that the real hal
// drivers (hal/card, hal/fingerprint, hal/face, hal/door) run unchanged in
// tests, in the demo and on an integrator's desk. cmd/termsim wraps it in a
// command with a console, scenario files and a control socket.
//
// # Device convention
//
// Every simulated device follows the same shape, so Rig, cmd/termsim and
// tests treat them alike:
//
//   - It is a struct built by NewX(cfg XConfig) (*X, error) with plain
//     Config fields (zero means the documented default). Its state (stored
//     fingerprint templates, enrolled faces, relay contacts) lives in the
//     struct and outlives any one connection, as a module's flash does; a
//     device models power loss on unplug where the hardware would (the
//     relay board drops its relays).
//   - It implements Device: Serve(ctx, port io.ReadWriter) error speaks the
//     module side of the protocol on port until ctx is done or port fails.
//     Serve never closes port; whoever opened it does. It returns promptly
//     when ctx is done even while blocked reading (wakeOnDone sets a past
//     read deadline on ports that have one, such as a PTY; Plug also closes
//     the PTY). Serve bounds every buffer and answers garbage the way the
//     module would (its error code, or silence); it never panics on input.
//   - Control methods model the outside world and are safe for concurrent
//     use with Serve: Swipe (a card enters the field), PlaceFinger,
//     ShowFace, Noise (line noise), State and Wait (relay contact). A
//     control method that needs the wire writes through the device's wire
//     (see wire.go): the port of the current Serve, shared with Serve's own
//     replies so frames never interleave; while no Serve runs it returns
//     ErrUnplugged. Control methods that wait take a context.
//   - It has its own codec, independent of the driver's: sim never imports
//     the drivers it simulates, so a test of driver against simulator
//     checks two implementations of the protocol against each other.
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
// # Devices that are no serial line
//
// A USB keyboard-wedge reader or USB keypad is an input device, not a
// serial line: InputDevice writes input_event records (either layout) into
// a FIFO that hal/evdev opens as it would /dev/input/eventN; unplugging
// removes the FIFO and closes it, so the driver reads end of input. The
// door's sensor and exit button, as a board's gpio-keys device reports
// them, are another InputDevice (SetDoor, PressExit). Wiegand readers and
// keypads pulse GPIO lines, which a container does not have: WiegandCard,
// WiegandKey and WiegandTimeline make the pulse timelines that tests
// replay at hal/wiegand's GPIO seam.
//
// # Rig and control
//
// A Rig holds the devices in one directory of links (card, relay,
// fingerprint, face, keypad; and the FIFOs wedge and doorio) and runs the
// command language documented in Help: "swipe 0006547886", "finger 3", "face
// stranger", "pin 1234#", "wedge 0006547886", "unplug card",
// "await relay on 5s", … one line in, one reply line ("ok …" or "err …")
// out. Rig.ServeControl serves it on a unix socket; Dial returns a Control,
// the Go client tests and the demo use.
//
// Import rule: sim imports none of termagent's packages: not hal, not the
// drivers it simulates, nor agent, store or protocol.
package sim
