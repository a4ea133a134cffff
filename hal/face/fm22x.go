// Package face drives UART face-recognition modules. Its one driver,
// "fm22x", speaks the "EF AA" protocol of the HLK-FM225/FM223 family and
// its relatives (Kneron KID, Rockchip RMSL, DFRobot SEN0677), after Hi-Link's
// datasheet, esphome's hlk_fm22x component (esphome/components/hlk_fm22x)
// and the L015 palm-vein module's protocol document, which share the
// message set.
//
// The package has two layers: a pure frame codec (Frame, Parse, Decoder)
// and the FM22x driver, which implements hal.FaceModule over a serial port
// from hal/serialport. hal/sim.Face simulates the module side.
//
// # Enrolment from a photo
//
// The family has no documented way to enrol from a JPEG. Some firmware
// builds take one through a message whose id varies (0xF7 in the host code
// seen, 0x1E in another script), so the driver sends it only when
// Config.PhotoEnrollMsgID names it, and otherwise Enroll returns an error
// wrapping hal.ErrUnsupported. Our reading of the sequence (the host code
// stops at the last chunk; the final reply is ours to define):
//
//	host → [id] seq 0x0000 | photo size (4, BE) | bio type 0x00   module → REPLY [id, result, seq(2)]
//	host → [id] seq n (2, BE, from 1) | up to PhotoChunk bytes      module → REPLY [id, result, seq(2)]
//	the packet that completes the photo                            module → REPLY [id, result, seq(2), user id(2)]
//
// A non-zero result ends the enrolment (0x18/0x19 photo too large/small,
// 0x09 full, 0x0A already enrolled). The module stores no name this way.
//
// Import rule: like every hal sub-package it imports only hal,
// hal/serialport and hal/internal/modlink (the link machinery it shares
// with hal/fingerprint), never agent, store or protocol.
package face

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/internal/modlink"
	"termagent/hal/serialport"
)

// Driver is the name configuration uses to select this driver.
const Driver = "fm22x"

// Defaults for zero Config fields.
const (
	DefaultBaud           = 115200
	DefaultVerifySeconds  = 3
	DefaultCommandTimeout = 3 * time.Second
	DefaultDeleteTimeout  = 10 * time.Second
	DefaultEnrollTimeout  = 10 * time.Second
	DefaultPhotoChunk     = 246
	DefaultMaxPhoto       = 512 << 10
	DefaultByteGap        = 200 * time.Millisecond
)

// Log field keys.
const (
	logUserID     = "user_id"
	logPhotoBytes = "photo_bytes"
	logOp         = "op"
	logMsgID      = "msg_id"
)

// Config configures an FM22x driver. Zero values mean the documented
// defaults.
type Config struct {
	// Port is the serial device path. Required by Open.
	Port string `yaml:"port"`
	// Baud is the line speed in bits per second; zero means 115200.
	Baud int `yaml:"baud"`
	// VerifySeconds is the module-side timeout of one VERIFY, 1..255 s.
	// Recognize repeats VERIFY, and other commands wait for the current
	// one to end, so it bounds their latency; zero means 3.
	VerifySeconds int `yaml:"verify_seconds"`
	// CommandTimeout bounds the wait for an ordinary reply; zero means 3 s.
	CommandTimeout time.Duration `yaml:"-"`
	// DeleteTimeout bounds DELUSER and DELALL; zero means 10 s.
	DeleteTimeout time.Duration `yaml:"-"`
	// EnrollTimeout bounds the reply to a photo's last chunk (the module
	// computes the face features); zero means 10 s.
	EnrollTimeout time.Duration `yaml:"-"`
	// PhotoEnrollMsgID is the firmware's enrol-from-photo message id
	// (0xF7 on the builds seen); zero means the module has none and
	// Enroll returns an error wrapping hal.ErrUnsupported.
	PhotoEnrollMsgID byte `yaml:"photo_enroll_msg_id"`
	// PhotoChunk is the JPEG bytes per enrolment packet, 1..4094; zero
	// means 246.
	PhotoChunk int `yaml:"photo_chunk"`
	// MaxPhoto bounds the photo Enroll accepts, in bytes; zero means 512 KiB.
	MaxPhoto int `yaml:"max_photo"`
	// ByteGap is how long a started frame may stall before the driver
	// takes its header for noise and resynchronises; zero means 200 ms.
	ByteGap time.Duration `yaml:"-"`
	// Logger receives the driver's events; the zero Logger means none.
	Logger zerolog.Logger `yaml:"-"`
}

// WithDefaults returns c with every zero field that has a default set to
// it; Open and New apply it.
func (c Config) WithDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.VerifySeconds == 0 {
		c.VerifySeconds = DefaultVerifySeconds
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.DeleteTimeout == 0 {
		c.DeleteTimeout = DefaultDeleteTimeout
	}
	if c.EnrollTimeout == 0 {
		c.EnrollTimeout = DefaultEnrollTimeout
	}
	if c.PhotoChunk == 0 {
		c.PhotoChunk = DefaultPhotoChunk
	}
	if c.MaxPhoto == 0 {
		c.MaxPhoto = DefaultMaxPhoto
	}
	if c.ByteGap == 0 {
		c.ByteGap = DefaultByteGap
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.VerifySeconds < 1 || c.VerifySeconds > 255:
		return fmt.Errorf("face: verify seconds %d out of range 1..255", c.VerifySeconds)
	case c.CommandTimeout < 0 || c.DeleteTimeout < 0 || c.EnrollTimeout < 0 || c.ByteGap < 0:
		return errors.New("face: negative timeout")
	case c.PhotoChunk < 1 || c.PhotoChunk > MaxData-2:
		return fmt.Errorf("face: photo chunk %d out of range 1..%d", c.PhotoChunk, MaxData-2)
	case c.MaxPhoto < 1 || c.MaxPhoto > 0xFFFF*c.PhotoChunk:
		return fmt.Errorf("face: max photo %d bytes out of range 1..%d", c.MaxPhoto, 0xFFFF*c.PhotoChunk)
	}
	switch c.PhotoEnrollMsgID {
	case MsgNote, MsgImage, MsgReset, MsgGetStatus, MsgVerify, MsgDelUser, MsgDelAll, MsgGetAllUserID:
		return fmt.Errorf("face: photo enrol message id 0x%02X is another message", c.PhotoEnrollMsgID)
	}
	return nil
}

// FM22x drives one EF AA face module. All methods are safe for concurrent
// use: commands are serialised, one outstanding at a time, and Recognize
// releases the link between two VERIFY commands so that Enroll, Delete,
// Clear and Users interleave with it (waiting at most VerifySeconds). A
// command whose ctx ends before the reply is aborted with RESET, so the
// module is idle again for the next one.
type FM22x struct {
	cfg  Config
	link *modlink.Link // reader goroutine, hold of the link, Close
	log  zerolog.Logger

	// Guarded by the hold of the link.
	dec       Decoder
	probed    bool
	enrolling bool // a photo enrolment is between two packets
}

var (
	_ hal.FaceModule     = (*FM22x)(nil)
	_ hal.HealthReporter = (*FM22x)(nil)
)

// Open validates cfg, opens cfg.Port and returns the driver; it fails only
// for a bad cfg. A port missing now is the state of a port lost later:
// Health reports it (hal.ErrFault naming the port), the driver reopens it
// with backoff, and every command fails with hal.ErrFault or
// hal.ErrTimeout until the module answers. The module is checked
// (GET_STATUS) before the first command, and again after a loss; Probe
// does it at once. The caller closes the driver.
func Open(cfg Config) (*FM22x, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return modlink.Open("face", serialport.Config{Name: cfg.Port, Baud: cfg.Baud}, func(p io.ReadWriteCloser) (*FM22x, error) {
		return New(p, cfg)
	})
}

// New returns a driver speaking over port, which it owns and closes; it
// does not probe. port's Read may return errors wrapping hal.ErrTimeout
// for silence; after other errors the driver calls port's Reopen(ctx)
// error method if it has one, or else treats the module as gone.
func New(port io.ReadWriteCloser, cfg Config) (*FM22x, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &FM22x{cfg: cfg}
	m.link = modlink.New(port, modlink.Config{
		Kind:    "face",
		Port:    cfg.Port,
		ByteGap: cfg.ByteGap,
		Settle:  m.settle,
		Logger:  cfg.Logger,
	})
	m.log = m.link.Logger()
	return m, nil
}

// abort is called when ctx ended while the module still owed the reply to
// msg. The module would carry on with it (a VERIFY until its own timeout)
// and ignore commands meanwhile, so abort sends RESET, which ends the
// current task, and leaves its reply owed (Link.Owe) for settle: the
// caller returns at once and the next holder of the link waits for the
// module to be idle.
func (m *FM22x) abort(op string, msg byte) {
	m.probed = false
	b, err := Frame{MsgID: MsgReset}.MarshalBinary()
	if err == nil {
		err = m.link.Send(b)
	}
	if err != nil {
		m.log.Warn().Err(err).Str(logOp, op).Uint8(logMsgID, msg).Msg("command cancelled; RESET not sent")
		return
	}
	m.log.Debug().Str(logOp, op).Uint8(logMsgID, msg).Msg("command cancelled; RESET sent")
	m.link.Owe(time.Now().Add(m.cfg.CommandTimeout))
}

// settle is the link's Config.Settle: when the link is next taken after
// a cancelled command, it waits until the module answers the RESET abort
// sent (a REPLY to RESET or NOTE READY), at most until CommandTimeout
// after the RESET (the link passes the time left, at least ByteGap, for
// bytes in flight). Late replies to the cancelled command are skipped on
// the way. It fails only when ctx ends (the wait is then still owed) or on
// Close; a module that stays silent is left to the GET_STATUS probe.
func (m *FM22x) settle(ctx context.Context, op string, timeout time.Duration) error {
	_, err := m.receive(ctx, op+": RESET after a cancelled command", timeout, MsgReset, nil)
	switch {
	case err == nil, errors.Is(err, ErrReset):
	case modlink.Interrupted(ctx, err):
		return err // still owed to the next holder of the link
	default: // silent or garbled: the GET_STATUS probe decides
		m.log.Warn().Err(err).Str(logOp, op).Msg("module did not acknowledge RESET")
		m.probed = false
	}
	return nil
}

// begin takes the link and makes sure the module answered since the last
// error.
func (m *FM22x) begin(ctx context.Context, op string) (func(), error) {
	release, err := m.link.Acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	if !m.probed {
		if _, err := m.command(ctx, op+": GET_STATUS", m.cfg.CommandTimeout, MsgGetStatus); err != nil {
			release()
			return nil, err
		}
		m.probed = true
	}
	return release, nil
}

// Probe checks now that the module answers GET_STATUS. Commands probe by
// themselves after an error.
func (m *FM22x) Probe(ctx context.Context) error {
	release, err := m.link.Acquire(ctx, "probe")
	if err != nil {
		return err
	}
	defer release()
	m.probed = false
	if _, err := m.command(ctx, "probe: GET_STATUS", m.cfg.CommandTimeout, MsgGetStatus); err != nil {
		return err
	}
	m.probed = true
	m.log.Info().Msg("face module ready")
	return nil
}

// exchange sends one command and waits up to timeout for its REPLY,
// skipping notes and stale replies. NOTE READY means the module reset and
// will not answer: it returns an error wrapping ErrReset and hal.ErrFault.
// When ctx ends first the command is aborted (see abort). Errors other
// than a reply make the next command probe again.
func (m *FM22x) exchange(ctx context.Context, op string, timeout time.Duration, msg byte, data []byte) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err // not sent
	}
	if m.drain() && m.enrolling {
		return Reply{}, m.link.Wrap(op, fmt.Errorf("%w: %w", hal.ErrFault, ErrReset))
	}
	b, err := Frame{MsgID: msg, Data: data}.MarshalBinary()
	if err == nil {
		err = m.link.Send(b)
	}
	if err != nil {
		m.probed = false
		return Reply{}, m.link.Wrap(op, err)
	}
	r, err := m.receive(ctx, op, timeout, msg, data)
	switch {
	case err == nil, errors.Is(err, ErrReset):
	case modlink.Cancelled(ctx, err):
		m.abort(op, msg)
	default:
		m.probed = false
	}
	return r, err
}

// drain drops what arrived since the last command (late replies, notes,
// noise) and reports whether a NOTE READY was among it: the module reset
// between two commands.
func (m *FM22x) drain() (reset bool) {
	for more := true; more; {
		var b []byte
		if b, more = m.link.Pending(); more {
			m.dec.Write(b)
		}
		for {
			f, err := m.dec.Next()
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err == nil && f.MsgID == MsgNote && len(f.Data) > 0 && f.Data[0] == NoteReady {
				reset = true
			}
		}
	}
	m.dec.Reset()
	return reset
}

// receive waits for the REPLY to msg (sent with data) until timeout, ctx
// or Close. Corrupt frames, stalled frame starts, notes and stale replies
// are skipped: a reply to another message, or a photo-enrolment reply for
// another sequence number than data's.
func (m *FM22x) receive(ctx context.Context, op string, timeout time.Duration, msg byte, data []byte) (Reply, error) {
	photo := msg == m.cfg.PhotoEnrollMsgID && msg != 0 && len(data) >= 2
	rcv := m.link.Receive(op, timeout)
	defer rcv.Stop()
	for {
		for {
			f, err := m.dec.Next()
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				rcv.Corrupt = err
				m.log.Debug().Err(err).Msg("corrupt frame skipped")
				continue
			}
			switch f.MsgID {
			case MsgReply:
				r, err := ParseReply(f.Data)
				if err != nil || r.Cmd != msg || (photo && len(r.Payload) >= 2 && !bytes.Equal(r.Payload[:2], data[:2])) {
					m.log.Debug().Err(err).Msg("stale or short reply skipped")
					continue
				}
				return r, nil
			case MsgNote:
				if len(f.Data) > 0 && f.Data[0] == NoteReady {
					m.log.Info().Msg("module reset (NOTE READY) during a command")
					return Reply{}, m.link.Wrap(op, fmt.Errorf("%w: %w", hal.ErrFault, ErrReset))
				}
			}
		}
		if err := rcv.Fill(ctx, &m.dec); err != nil {
			return Reply{}, err
		}
	}
}

// command is exchange for an idempotent command: a module reset during it
// sends it once more.
func (m *FM22x) command(ctx context.Context, op string, timeout time.Duration, msg byte, data ...byte) (Reply, error) {
	r, err := m.exchange(ctx, op, timeout, msg, data)
	if errors.Is(err, ErrReset) {
		r, err = m.exchange(ctx, op, timeout, msg, data)
	}
	return r, err
}

// Recognize sends VERIFY (VerifySeconds each) until the module sees a
// face: a recognised user gives Face{Recognised: true, UserID}; a face the
// module rejects or does not know gives Face{Recognised: false}. A VERIFY
// that times out, is aborted, fails the liveness check or is cut by a
// module reset is not a result: Recognize sends the next one. It returns
// ctx.Err() when ctx is done, at once: a VERIFY then in progress is
// aborted with RESET, and the next command first waits (at most
// CommandTimeout) for the module to acknowledge it. It returns an error
// wrapping hal.ErrClosed after Close, and the error of a failed exchange
// (the next call probes again).
func (m *FM22x) Recognize(ctx context.Context) (hal.Face, error) {
	for {
		f, ok, err := m.verifyOnce(ctx)
		if err != nil || ok {
			return f, err
		}
	}
}

func (m *FM22x) verifyOnce(ctx context.Context) (hal.Face, bool, error) {
	release, err := m.begin(ctx, "recognize")
	if err != nil {
		return hal.Face{}, false, err
	}
	defer release()
	timeout := time.Duration(m.cfg.VerifySeconds)*time.Second + m.cfg.CommandTimeout
	r, err := m.exchange(ctx, "recognize: VERIFY", timeout, MsgVerify, []byte{0, byte(m.cfg.VerifySeconds)})
	switch {
	case errors.Is(err, ErrReset):
		return hal.Face{}, false, nil
	case err != nil:
		return hal.Face{}, false, err
	}
	switch r.Result {
	case ResultSuccess:
		if len(r.Payload) < 2 {
			m.probed = false
			return hal.Face{}, false, m.link.Wrap("recognize", fmt.Errorf("reply of %d bytes: %w: %w", len(r.Payload), hal.ErrFault, ErrShortReply))
		}
		return hal.Face{Recognised: true, UserID: int(binary.BigEndian.Uint16(r.Payload)), At: time.Now()}, true, nil
	case ResultRejected, ResultUnknownUser:
		return hal.Face{At: time.Now()}, true, nil
	case ResultTimeout, ResultAborted, ResultLiveness:
		return hal.Face{}, false, nil
	}
	return hal.Face{}, false, m.link.Wrap("recognize", &ResultError{Cmd: MsgVerify, Result: r.Result})
}

func (m *FM22x) checkID(op string, id int) error {
	if id < 1 || id > 0xFFFF {
		return m.link.Wrap(op, fmt.Errorf("user id %d out of range 1..65535: %w", id, hal.ErrRejected))
	}
	return nil
}

// Delete removes user id (DELUSER); an unknown user is no error.
func (m *FM22x) Delete(ctx context.Context, id int) error {
	op := fmt.Sprintf("delete user %d", id)
	if err := m.checkID(op, id); err != nil {
		return err
	}
	release, err := m.begin(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	r, err := m.command(ctx, op, m.cfg.DeleteTimeout, MsgDelUser, byte(id>>8), byte(id))
	if err != nil {
		return err
	}
	if r.Result != ResultSuccess && r.Result != ResultUnknownUser {
		return m.link.Wrap(op, &ResultError{Cmd: MsgDelUser, Result: r.Result})
	}
	return nil
}

// Clear removes every user (DELALL).
func (m *FM22x) Clear(ctx context.Context) error {
	release, err := m.begin(ctx, "clear")
	if err != nil {
		return err
	}
	defer release()
	r, err := m.command(ctx, "clear", m.cfg.DeleteTimeout, MsgDelAll)
	if err != nil {
		return err
	}
	if r.Result != ResultSuccess {
		return m.link.Wrap("clear", &ResultError{Cmd: MsgDelAll, Result: r.Result})
	}
	return nil
}

// Users lists the enrolled user ids in ascending order (GET_ALL_USERID).
func (m *FM22x) Users(ctx context.Context) ([]int, error) {
	release, err := m.begin(ctx, "list users")
	if err != nil {
		return nil, err
	}
	defer release()
	r, err := m.command(ctx, "list users", m.cfg.CommandTimeout, MsgGetAllUserID)
	if err != nil {
		return nil, err
	}
	if r.Result != ResultSuccess {
		return nil, m.link.Wrap("list users", &ResultError{Cmd: MsgGetAllUserID, Result: r.Result})
	}
	if len(r.Payload) < 1 || len(r.Payload) < 1+2*int(r.Payload[0]) {
		m.probed = false
		return nil, m.link.Wrap("list users", fmt.Errorf("reply of %d bytes: %w: %w", len(r.Payload), hal.ErrFault, ErrShortReply))
	}
	ids := make([]int, r.Payload[0])
	for i := range ids {
		ids[i] = int(binary.BigEndian.Uint16(r.Payload[1+2*i:]))
	}
	slices.Sort(ids)
	return ids, nil
}

// Enroll enrols a user from photo (JPEG bytes) through the configured
// photo-enrol message (see the package documentation) and returns the id
// the module assigned. Without Config.PhotoEnrollMsgID it returns an error
// wrapping hal.ErrUnsupported without touching the link; a module that
// answers the first packet with "unknown" (0x05) gets the same. name is
// not sent: this message carries none.
func (m *FM22x) Enroll(ctx context.Context, name string, photo []byte) (int, error) {
	const op = "enroll from photo"
	id := m.cfg.PhotoEnrollMsgID
	if id == 0 {
		return 0, m.link.Wrap(op, fmt.Errorf("no photo enrol message configured: %w", hal.ErrUnsupported))
	}
	if len(photo) == 0 || len(photo) > m.cfg.MaxPhoto {
		return 0, m.link.Wrap(op, fmt.Errorf("photo of %d bytes, want 1..%d: %w", len(photo), m.cfg.MaxPhoto, hal.ErrRejected))
	}
	release, err := m.begin(ctx, op)
	if err != nil {
		return 0, err
	}
	defer release()
	first := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(len(photo)))
	first = append(first, 0) // bio type: normal photo
	r, err := m.exchange(ctx, op+": start", m.cfg.CommandTimeout, id, first)
	if err != nil {
		return 0, err
	}
	switch r.Result {
	case ResultSuccess:
	case ResultUnknown:
		return 0, m.link.Wrap(op, fmt.Errorf("module does not know message 0x%02X: %w", id, hal.ErrUnsupported))
	default:
		return 0, m.link.Wrap(op, &ResultError{Cmd: id, Result: r.Result})
	}
	m.enrolling = true
	defer func() { m.enrolling = false }()
	rest := photo
	for seq := 1; ; seq++ {
		n := min(len(rest), m.cfg.PhotoChunk)
		timeout := m.cfg.CommandTimeout
		if n == len(rest) {
			timeout = m.cfg.EnrollTimeout
		}
		pkt := append(binary.BigEndian.AppendUint16(nil, uint16(seq)), rest[:n]...)
		cop := fmt.Sprintf("%s: packet %d", op, seq)
		r, err := m.exchange(ctx, cop, timeout, id, pkt)
		if err != nil {
			return 0, err
		}
		if r.Result != ResultSuccess {
			return 0, m.link.Wrap(cop, &ResultError{Cmd: id, Result: r.Result})
		}
		if len(r.Payload) < 2 || int(binary.BigEndian.Uint16(r.Payload)) != seq {
			m.probed = false
			return 0, m.link.Wrap(cop, fmt.Errorf("reply for another packet: %w", hal.ErrFault))
		}
		rest = rest[n:]
		if len(rest) == 0 {
			if len(r.Payload) < 4 {
				m.probed = false
				return 0, m.link.Wrap(cop, fmt.Errorf("final reply without a user id: %w: %w", hal.ErrFault, ErrShortReply))
			}
			uid := int(binary.BigEndian.Uint16(r.Payload[2:4]))
			m.log.Info().Int(logUserID, uid).Int(logPhotoBytes, len(photo)).Msg("user enrolled from photo")
			return uid, nil
		}
	}
}

// Close stops the driver: calls waiting for the link or a reply return an
// error wrapping hal.ErrClosed, the port is closed and the reader
// goroutine has ended when Close returns. Idempotent.
func (m *FM22x) Close() error { return m.link.Close() }

// Health reports whether the module's port is open (hal.HealthReporter):
// the driver's reader goroutine sees an unplug at once, idle or not, and
// reopens the port with backoff. That the module answers is checked by its
// commands, not here.
func (m *FM22x) Health() (hal.Health, <-chan struct{}) { return m.link.Health() }
