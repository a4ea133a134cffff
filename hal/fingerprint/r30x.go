// Package fingerprint drives UART fingerprint modules. Its one driver,
// "r30x", speaks the Synochip / ZhianTec 0xEF01 packet protocol of the
// R30x, AS608, ZFM-20/60/70 and R502/R503 families, after the ZFM-20 user manual, the R503 user manual
// and the R30x manuals (and Adafruit's fingerprint library, which speaks
// the same protocol).
//
// The package has two layers: a pure packet codec (Packet, Parse, Decoder:
// functions over bytes, no I/O, no goroutines) and the R30x driver, which
// implements hal.FingerprintModule over a serial port from hal/serialport.
// hal/sim.Fingerprint simulates the module side on a pseudo-terminal.
//
// Import rule: like every hal sub-package it imports only hal,
// hal/serialport and hal/internal/modlink (the link machinery it shares
// with hal/face), never agent, store or protocol.
package fingerprint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/internal/modlink"
	"termagent/hal/serialport"
)

// Driver is the name configuration uses to select this driver.
const Driver = "r30x"

// Defaults for zero Config fields.
const (
	DefaultBaud           = 57600
	DefaultPollInterval   = 150 * time.Millisecond
	DefaultCommandTimeout = 2 * time.Second
	DefaultSlowTimeout    = 5 * time.Second
	DefaultByteGap        = 200 * time.Millisecond
	DefaultCapacity       = 200
	DefaultPacketSize     = 128
	// MaxTemplate bounds the template Store accepts, in bytes (the largest
	// templates seen are 1536 bytes).
	MaxTemplate = 4096
)

// Log field keys.
const (
	logCode       = "code"
	logCapacity   = "capacity"
	logPacketSize = "packet_size"
	logPID        = "pid"
)

// Config configures an R30x driver. Zero values mean the documented
// defaults.
type Config struct {
	// Port is the serial device path, e.g. /dev/ttyS2. Required by Open.
	Port string `yaml:"port"`
	// Baud is the line speed in bits per second; zero means 57600.
	Baud int `yaml:"baud"`
	// Address is the module address; zero means 0xFFFFFFFF (the factory
	// value; a module set to address 0 cannot be driven).
	Address uint32 `yaml:"address"`
	// Password is the module password VfyPwd presents; zero is the
	// factory value.
	Password uint32 `yaml:"password"`
	// PollInterval is the pause between GenImg polls while Identify waits
	// for a finger; zero means 150 ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// CommandTimeout bounds the wait for the ACK of an ordinary command;
	// zero means 2 s.
	CommandTimeout time.Duration `yaml:"-"`
	// SlowTimeout bounds the wait for the ACK of Store, Empty and Search
	// (flash writes, searches over the whole library); zero means 5 s.
	SlowTimeout time.Duration `yaml:"-"`
	// ByteGap is how long a started packet may stall before the driver
	// takes its header for noise and resynchronises; zero means 200 ms.
	ByteGap time.Duration `yaml:"-"`
	// DataPacing is a pause between two data packets of a Store, for
	// modules that drop bytes at full speed; zero means none.
	DataPacing time.Duration `yaml:"-"`
	// Capacity (slots) and PacketSize (bytes per data packet) are used
	// only when the module does not answer ReadSysPara (the R308); zero
	// means 200 and 128.
	Capacity   int `yaml:"capacity"`
	PacketSize int `yaml:"-"`
	// Logger receives the driver's events; the zero Logger means none.
	Logger zerolog.Logger `yaml:"-"`
}

// WithDefaults returns c with every zero field that has a default set to
// it; Open and New apply it.
func (c Config) WithDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Address == 0 {
		c.Address = DefaultAddress
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.SlowTimeout == 0 {
		c.SlowTimeout = DefaultSlowTimeout
	}
	if c.ByteGap == 0 {
		c.ByteGap = DefaultByteGap
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.PacketSize == 0 {
		c.PacketSize = DefaultPacketSize
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.PollInterval < 0 || c.CommandTimeout < 0 || c.SlowTimeout < 0 || c.ByteGap < 0 || c.DataPacing < 0:
		return errors.New("fingerprint: negative poll interval or timeout")
	case c.Capacity < 1 || c.Capacity > 0xFFFF:
		return fmt.Errorf("fingerprint: capacity %d out of range 1..65535", c.Capacity)
	case packetCode(c.PacketSize) < 0:
		return fmt.Errorf("fingerprint: packet size %d is not 32, 64, 128 or 256", c.PacketSize)
	}
	return nil
}

func packetCode(size int) int {
	for code, s := range [...]int{32, 64, 128, 256} {
		if s == size {
			return code
		}
	}
	return -1
}

// R30x drives one 0xEF01 fingerprint module. All methods are safe for
// concurrent use: commands are serialised, one outstanding on the link at
// a time, and Identify releases the link between two polls so that Store,
// Delete, Clear and Slots interleave with it. A call whose ctx ends while
// an ACK is outstanding returns at once; the next command first waits for
// that late ACK (at most the cancelled command's timeout) and drops it.
// After a timeout or a corrupt reply the next command first probes the
// module again (VfyPwd, ReadSysPara).
type R30x struct {
	cfg  Config
	link *modlink.Link // reader goroutine, hold of the link, Close
	log  zerolog.Logger

	// Guarded by the hold of the link.
	dec        Decoder
	probed     bool
	capacity   int
	packetSize int
	owed       byte // instruction whose ACK a cancelled call left owed (Link.Owe)
}

var (
	_ hal.FingerprintModule = (*R30x)(nil)
	_ hal.HealthReporter    = (*R30x)(nil)
)

// Open validates cfg, opens cfg.Port and returns the driver; it fails
// only for a bad cfg. A port missing now is the state of a port lost later:
// Health reports it (hal.ErrFault naming the port), the driver reopens it
// with backoff, and every command fails with hal.ErrFault or
// hal.ErrTimeout until the module answers. The module is probed (VfyPwd,
// ReadSysPara) before the first command, and again after a loss; Probe
// does it at once. The caller closes the driver.
func Open(cfg Config) (*R30x, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return modlink.Open("fingerprint", serialport.Config{Name: cfg.Port, Baud: cfg.Baud}, func(p io.ReadWriteCloser) (*R30x, error) {
		return New(p, cfg)
	})
}

// New returns a driver speaking over port, which it owns and closes. It
// does not probe: the first command does. port's Read may return errors
// wrapping hal.ErrTimeout for silence; after other errors the driver calls
// port's Reopen(ctx) error method if it has one (serialport.Port does), or
// else treats the module as gone.
func New(port io.ReadWriteCloser, cfg Config) (*R30x, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &R30x{cfg: cfg, capacity: cfg.Capacity, packetSize: cfg.PacketSize}
	m.link = modlink.New(port, modlink.Config{
		Kind:    "fingerprint",
		Port:    cfg.Port,
		ByteGap: cfg.ByteGap,
		Settle:  m.settle,
		Logger:  cfg.Logger,
	})
	m.log = m.link.Logger()
	return m, nil
}

// settle is the link's Config.Settle: when the link is next taken after
// a call gave up on a command (its ctx ended), it waits for the ACK the
// module still owes, until that command's own timeout (the link passes
// the time left, at least ByteGap, for bytes in flight), and drops it.
// The module has no abort command and answers in order, so this is what
// keeps the late ACK from passing for the next command's. It fails only
// when ctx ends (the ACK is then still owed) or on Close; a module that
// stays silent is left to the probe.
func (m *R30x) settle(ctx context.Context, op string, timeout time.Duration) error {
	_, err := m.receive(ctx, fmt.Sprintf("%s: late ACK to instruction 0x%02X", op, m.owed), timeout, m.owed)
	switch {
	case err == nil:
	case modlink.Interrupted(ctx, err):
		return err
	default:
		m.log.Warn().Err(err).Msg("late ACK of a cancelled command did not come")
		m.probed = false
	}
	return nil
}

// Probe checks the module answers (VfyPwd with the configured password)
// and reads its capacity and packet size (ReadSysPara; a module without
// it keeps the configured values). Commands probe by themselves when
// needed; Probe is for a caller that wants to know now.
func (m *R30x) Probe(ctx context.Context) error {
	release, err := m.link.Acquire(ctx, "probe")
	if err != nil {
		return err
	}
	defer release()
	return m.probeLocked(ctx)
}

func (m *R30x) probeLocked(ctx context.Context) error {
	m.probed = false
	var pw [4]byte
	binary.BigEndian.PutUint32(pw[:], m.cfg.Password)
	code, _, err := m.exchange(ctx, "probe: VfyPwd", m.cfg.CommandTimeout, CmdVfyPwd, pw[:]...)
	if err != nil {
		return err
	}
	if code != CodeOK {
		return m.link.Wrap("probe: VfyPwd", &CodeError{Instr: CmdVfyPwd, Code: code})
	}
	code, ret, err := m.exchange(ctx, "probe: ReadSysPara", m.cfg.CommandTimeout, CmdReadSysPara)
	if err != nil {
		return err
	}
	capacity, size := m.cfg.Capacity, m.cfg.PacketSize
	if code == CodeOK && len(ret) >= 16 {
		if c := int(binary.BigEndian.Uint16(ret[4:6])); c > 0 {
			capacity = c
		}
		if pc := int(binary.BigEndian.Uint16(ret[12:14])); pc <= 3 {
			size = 32 << pc
		}
	} else {
		m.log.Info().Stringer(logCode, code).Msg("module does not answer ReadSysPara; using configured capacity and packet size")
	}
	m.capacity, m.packetSize, m.probed = capacity, size, true
	m.log.Info().Int(logCapacity, capacity).Int(logPacketSize, size).Msg("fingerprint module ready")
	return nil
}

// ensureProbed probes when a previous error left the module in doubt.
func (m *R30x) ensureProbed(ctx context.Context) error {
	if m.probed {
		return nil
	}
	return m.probeLocked(ctx)
}

// exchange sends one command and waits up to timeout for its ACK. It
// returns the confirmation code and the return values. The caller holds
// the link. When ctx ends first the ACK is left owed, for the next holder
// of the link to wait out (see settle). Errors other than a confirmation
// code make the next command probe again.
func (m *R30x) exchange(ctx context.Context, op string, timeout time.Duration, instr byte, params ...byte) (Code, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err // not sent
	}
	m.drain()
	if err := m.send(Command(m.cfg.Address, instr, params...)); err != nil {
		m.probed = false
		return 0, nil, m.link.Wrap(op, err)
	}
	sent := time.Now()
	p, err := m.receive(ctx, op, timeout, instr)
	if err != nil {
		m.probed = false
		if modlink.Cancelled(ctx, err) {
			m.owed = instr // for settle
			m.link.Owe(sent.Add(timeout))
		}
		return 0, nil, err
	}
	return Code(p.Content[0]), p.Content[1:], nil
}

// drain drops whatever arrived since the last command: late replies,
// R503 reset bytes, noise.
func (m *R30x) drain() {
	for {
		if _, ok := m.link.Pending(); !ok {
			m.dec.Reset()
			return
		}
	}
}

func (m *R30x) send(p Packet) error {
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	return m.link.Send(b)
}

// ackLen is the ACK content length (confirmation code included) of the
// commands whose ACK carries return values; the others have 1.
var ackLen = map[byte]int{
	CmdReadSysPara:    17,
	CmdReadIndexTable: 33,
	CmdSearch:         5,
	CmdHiSpeedSearch:  5,
	CmdTempleteNum:    3,
	CmdMatch:          3,
}

// ackFits reports whether content has the shape of instr's ACK: its full
// length, or a bare error code. ACKs name no instruction, so this is what
// keeps a late reply to an earlier command from passing for this one's.
func ackFits(instr byte, content []byte) bool {
	want := max(ackLen[instr], 1)
	return len(content) == want || (len(content) == 1 && Code(content[0]) != CodeOK)
}

// receive waits for the module's ACK until timeout, ctx or Close. Corrupt
// packets are skipped (the decoder resynchronises), and so is a packet
// start that stalls for ByteGap, and an ACK of the wrong shape; if nothing
// valid comes the error names what was skipped rather than a bare timeout.
func (m *R30x) receive(ctx context.Context, op string, timeout time.Duration, instr byte) (Packet, error) {
	rcv := m.link.Receive(op, timeout)
	defer rcv.Stop()
	for {
		for {
			p, err := m.dec.Next()
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				rcv.Corrupt = err
				m.log.Debug().Err(err).Msg("corrupt packet skipped")
				continue
			}
			if p.PID != PIDAck || p.Address != m.cfg.Address {
				m.log.Debug().Uint8(logPID, p.PID).Msg("unexpected packet skipped")
				continue
			}
			if !ackFits(instr, p.Content) {
				rcv.Corrupt = fmt.Errorf("ACK of %d bytes to instruction 0x%02X: %w", len(p.Content), instr, ErrLength)
				m.log.Debug().Err(rcv.Corrupt).Msg("stale or malformed ACK skipped")
				continue
			}
			return p, nil
		}
		if err := rcv.Fill(ctx, &m.dec); err != nil {
			return Packet{}, err
		}
	}
}

// command is exchange for commands whose only success is CodeOK.
func (m *R30x) command(ctx context.Context, op string, timeout time.Duration, instr byte, params ...byte) ([]byte, error) {
	code, ret, err := m.exchange(ctx, op, timeout, instr, params...)
	if err != nil {
		return nil, err
	}
	if code != CodeOK {
		if code == CodeVerifyPassword {
			m.probed = false // the module was reset and forgot VfyPwd
		}
		return nil, m.link.Wrap(op, &CodeError{Instr: instr, Code: code})
	}
	return ret, nil
}

// begin takes the link and makes sure the module is probed.
func (m *R30x) begin(ctx context.Context, op string) (func(), error) {
	release, err := m.link.Acquire(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := m.ensureProbed(ctx); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

func (m *R30x) checkSlot(op string, slot int) error {
	if slot < 0 || slot >= m.capacity {
		return m.link.Wrap(op, fmt.Errorf("slot %d out of range 0..%d: %w", slot, m.capacity-1, hal.ErrRejected))
	}
	return nil
}

// Capacity returns the number of slots the module reported (or the
// configured value before the first probe).
func (m *R30x) Capacity(ctx context.Context) (int, error) {
	release, err := m.begin(ctx, "capacity")
	if err != nil {
		return 0, err
	}
	defer release()
	return m.capacity, nil
}

// Store downloads template into CharBuffer1 (DownChar, then data packets
// of the module's packet size, the last one an end packet) and stores it
// at slot. template is opaque; the module decides its size, and refuses a
// template it cannot use (hal.ErrRejected).
func (m *R30x) Store(ctx context.Context, slot int, template []byte) error {
	op := fmt.Sprintf("store slot %d", slot)
	if len(template) == 0 || len(template) > MaxTemplate {
		return m.link.Wrap(op, fmt.Errorf("template of %d bytes, want 1..%d: %w", len(template), MaxTemplate, hal.ErrRejected))
	}
	release, err := m.begin(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	if err := m.checkSlot(op, slot); err != nil {
		return err
	}
	if _, err := m.command(ctx, op+": DownChar", m.cfg.CommandTimeout, CmdDownChar, 1); err != nil {
		return err
	}
	for rest := template; len(rest) > 0; {
		if len(rest) < len(template) {
			if err := m.pace(ctx, op); err != nil {
				m.probed = false // the module waits for the rest of the data
				return err
			}
		}
		n := min(len(rest), m.packetSize)
		pid := PIDData
		if n == len(rest) {
			pid = PIDEnd
		}
		if err := m.send(Packet{Address: m.cfg.Address, PID: pid, Content: rest[:n]}); err != nil {
			m.probed = false
			return m.link.Wrap(op+": data", err)
		}
		rest = rest[n:]
	}
	_, err = m.command(ctx, op, m.cfg.SlowTimeout, CmdStore, 1, byte(slot>>8), byte(slot))
	return err
}

// pace waits DataPacing, unless ctx ends or the driver closes first.
func (m *R30x) pace(ctx context.Context, op string) error {
	if m.cfg.DataPacing <= 0 {
		return nil
	}
	t := time.NewTimer(m.cfg.DataPacing)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.link.Done():
		return m.link.Wrap(op, hal.ErrClosed)
	}
}

// Delete removes the template at slot (DeleteChar of one slot); an empty
// slot is no error.
func (m *R30x) Delete(ctx context.Context, slot int) error {
	op := fmt.Sprintf("delete slot %d", slot)
	release, err := m.begin(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	if err := m.checkSlot(op, slot); err != nil {
		return err
	}
	_, err = m.command(ctx, op, m.cfg.SlowTimeout, CmdDeleteChar, byte(slot>>8), byte(slot), 0, 1)
	return err
}

// Clear removes every template (Empty).
func (m *R30x) Clear(ctx context.Context) error {
	release, err := m.begin(ctx, "clear")
	if err != nil {
		return err
	}
	defer release()
	_, err = m.command(ctx, "clear", m.cfg.SlowTimeout, CmdEmpty)
	return err
}

// Slots lists the occupied slots in ascending order, reading the index
// table page by page (256 slots a page).
func (m *R30x) Slots(ctx context.Context) ([]int, error) {
	release, err := m.begin(ctx, "list slots")
	if err != nil {
		return nil, err
	}
	defer release()
	var slots []int
	for page := 0; page*256 < m.capacity; page++ {
		op := fmt.Sprintf("list slots: page %d", page)
		table, err := m.command(ctx, op, m.cfg.CommandTimeout, CmdReadIndexTable, byte(page))
		if err != nil {
			return nil, err
		}
		if len(table) < 32 {
			return nil, m.link.Wrap(op, fmt.Errorf("index table of %d bytes: %w: %w", len(table), hal.ErrFault, ErrLength))
		}
		for i, b := range table[:32] {
			for j := range 8 {
				if slot := page*256 + 8*i + j; b&(1<<j) != 0 && slot < m.capacity {
					slots = append(slots, slot)
				}
			}
		}
	}
	return slots, nil
}

// Identify polls GenImg every PollInterval until a finger is on the
// sensor, then turns the image into features (Img2Tz) and searches the
// whole library. It returns Finger{Matched: true, Slot, Score} on a hit
// and Finger{Matched: false} for an unknown finger. An image too poor to
// use is not a result: polling goes on. It returns ctx.Err() when ctx is
// done, at once (an ACK then outstanding is waited out by the next
// command), an error wrapping hal.ErrClosed after Close, and the error of
// a failed exchange (the next call probes again).
func (m *R30x) Identify(ctx context.Context) (hal.Finger, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return hal.Finger{}, ctx.Err()
		case <-m.link.Done():
			return hal.Finger{}, m.link.Wrap("identify", hal.ErrClosed)
		}
		f, ok, err := m.poll(ctx)
		if err != nil || ok {
			return f, err
		}
		t.Reset(m.cfg.PollInterval)
	}
}

// poll is one GenImg and, with a finger, Img2Tz and Search, all under one
// hold of the link so no Store can reuse CharBuffer1 in between.
func (m *R30x) poll(ctx context.Context) (hal.Finger, bool, error) {
	release, err := m.begin(ctx, "identify")
	if err != nil {
		return hal.Finger{}, false, err
	}
	defer release()
	code, _, err := m.exchange(ctx, "identify: GenImg", m.cfg.CommandTimeout, CmdGenImg)
	switch {
	case err != nil:
		return hal.Finger{}, false, err
	case code == CodeNoFinger || code == CodeImageFail:
		return hal.Finger{}, false, nil
	case code != CodeOK:
		return hal.Finger{}, false, m.link.Wrap("identify: GenImg", &CodeError{Instr: CmdGenImg, Code: code})
	}
	code, _, err = m.exchange(ctx, "identify: Img2Tz", m.cfg.CommandTimeout, CmdImg2Tz, 1)
	switch {
	case err != nil:
		return hal.Finger{}, false, err
	case code == CodeImageMessy || code == CodeFewFeatures || code == CodeNoImage:
		m.log.Debug().Stringer(logCode, code).Msg("finger image unusable; polling on")
		return hal.Finger{}, false, nil
	case code != CodeOK:
		return hal.Finger{}, false, m.link.Wrap("identify: Img2Tz", &CodeError{Instr: CmdImg2Tz, Code: code})
	}
	n := m.capacity
	code, ret, err := m.exchange(ctx, "identify: Search", m.cfg.SlowTimeout, CmdSearch, 1, 0, 0, byte(n>>8), byte(n))
	switch {
	case err != nil:
		return hal.Finger{}, false, err
	case code == CodeNotFound:
		return hal.Finger{At: time.Now()}, true, nil
	case code != CodeOK:
		return hal.Finger{}, false, m.link.Wrap("identify: Search", &CodeError{Instr: CmdSearch, Code: code})
	case len(ret) < 4:
		m.probed = false
		return hal.Finger{}, false, m.link.Wrap("identify: Search", fmt.Errorf("reply of %d bytes: %w: %w", len(ret), hal.ErrFault, ErrLength))
	}
	return hal.Finger{
		Matched: true,
		Slot:    int(binary.BigEndian.Uint16(ret[0:2])),
		Score:   int(binary.BigEndian.Uint16(ret[2:4])),
		At:      time.Now(),
	}, true, nil
}

// Close stops the driver: it wakes any call waiting for the link or a
// reply (they return an error wrapping hal.ErrClosed), closes the port and
// waits for the reader goroutine. Idempotent; the module itself keeps its
// templates and needs no inert state.
func (m *R30x) Close() error { return m.link.Close() }

// Health reports whether the module's port is open (hal.HealthReporter):
// the driver's reader goroutine sees an unplug at once, idle or not, and
// reopens the port with backoff. That the module answers is checked by its
// commands, not here.
func (m *R30x) Health() (hal.Health, <-chan struct{}) { return m.link.Health() }
