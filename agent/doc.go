// Package agent is the terminal's behaviour: it composes the protocol link to
// the management server, the SQLite store and the hardware devices into an
// attendance / access-control terminal, as protocol/PROTOCOL.md
// (the project's binding reading of protocol V1.0) describes.
//
// Import rule: agent imports protocol, store and hal; none of them imports
// agent. agent consumes the store and the devices through the small
// interfaces it declares here (Store, and hal's device interfaces), so
// *store.DB and the hal drivers plug in without adapters. Only cmd/ reads
// configuration files, builds the concrete parts and handles signals.
//
// # Parts
//
//   - The link manager (link.go) dials the server from the stored settings
//     (or, in listen mode, accepts the server's connection), runs one
//     protocol.Peer per connection, backs off with full jitter between
//     attempts, forever, and falls back to the previous server when a move
//     ordered by set_device_info does not succeed in time. It knows nothing
//     of what runs on the connection.
//   - The command handlers (commands.go, person.go) answer every server
//     request of protocol/PROTOCOL.md with codes 0/-1/-2/-3 (§4 "Codes").
//   - The access path (access.go) turns card, face and fingerprint events
//     into a decision, a durable outbox record and a door pulse, in that
//     order (records.go): the record is committed, held, before the relay
//     clicks, released after, and withdrawn (with a "door fault" event) if
//     the relay cannot be driven. The door never waits for the network,
//     and waits for the database at most Access.RecordTimeout: a store
//     that fails lets the door open with the record kept in a bounded
//     queue in memory whose writer retries with backoff, so a transient
//     database failure delays a record but never loses it.
//   - The uploader (upload.go) drains the outbox oldest-first with a window
//     of calls in flight while the link is up; a record is removed only when
//     the server answers code 0 for its session_id.
//   - The module supervisor (modules.go) watches every device that reports
//     its connection (hal.HealthReporter: card reader, relay, face and
//     fingerprint modules), reports faults and recoveries in Status and to
//     the server, and resynchronises a biometric module with the database
//     at start and whenever it comes back.
//   - PIN entry (pin.go) assembles PINs from the keypad (serial, USB
//     evdev or Wiegand: any hal.Keypad), opens for a PIN that names one
//     person (or, in card+pin mode, for the PIN of the card just
//     presented), refuses wrong ones and locks the keypad after too many,
//     with a device event. PINs and keys are never logged.
//   - Door supervision (supervise.go) follows the door sensor: an opening
//     no grant, exit button or remote open allowed is "forced", an allowed
//     one that lasts too long is "held open"; each is a device event and a
//     Status field until the door closes. The exit button opens the door.
//   - Feedback (feedback.go) plays grant/deny patterns on the buzzer and
//     LEDs and runs the integrator's feedback hook (no shell) per decision.
//
// # Using the package
//
//	db, _ := store.Open(...)
//	a, err := agent.New(agent.Config{Link: agent.LinkConfig{ServerAddress: "10.0.0.5:49003"}},
//		agent.Parts{Store: db, Card: reader, Door: relay})
//	if err != nil { ... }
//	err = a.Run(ctx) // until ctx is done; then close the parts
//
// Run returns ErrRestart when the server ordered a restart and no restart
// hook is configured: the daemon exits so that its supervisor restarts it.
package agent
