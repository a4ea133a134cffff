package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Device names in a Rig: the file names of their links and the names
// control commands use.
const (
	DevCard        = "card"
	DevRelay       = "relay"
	DevFingerprint = "fingerprint"
	DevFace        = "face"
	DevKeypad      = "keypad" // serial keypad (pseudo-terminal)
	DevWedge       = "wedge"  // USB keyboard-wedge card reader (input_event FIFO)
	DevDoorIO      = "doorio" // door sensor and exit button as gpio-keys (input_event FIFO)
)

// AllDevices lists every device a Rig can hold, in display order.
var AllDevices = []string{DevCard, DevRelay, DevFingerprint, DevFace, DevKeypad, DevWedge, DevDoorIO}

// Limits of the control protocol.
const (
	// MaxCommandLen bounds one command line in bytes.
	MaxCommandLen = 1024
	// MaxWait bounds a wait or await command.
	MaxWait = 5 * time.Minute
	// DefaultAwait is an await command's timeout when it gives none.
	DefaultAwait = 10 * time.Second
	// maxControlConns bounds concurrent control connections.
	maxControlConns = 16
	// logCommand is the log field of a command line.
	logCommand = "command"
)

// ErrCommand is wrapped by a control command's error: the command was
// malformed or the simulator refused it.
var ErrCommand = errors.New("sim: command failed")

// RigConfig configures a Rig. Zero values mean the documented defaults.
type RigConfig struct {
	// Dir holds the devices' links (Dir/card, Dir/relay, …); it is
	// created (0700) if missing. Required.
	Dir string
	// Devices lists the devices to create; zero means all of AllDevices.
	Devices []string
	// Card, Relay, Fingerprint, Face, Keypad and Wedge configure the
	// devices.
	Card        CardReaderConfig
	Relay       RelayConfig
	Fingerprint FingerprintConfig
	Face        FaceConfig
	Keypad      KeypadConfig
	Wedge       InputConfig
	// DoorIO configures the door inputs' input device (its EventSize).
	DoorIO InputConfig
	// Log receives one event per command and per control connection. The
	// zero Logger discards.
	Log zerolog.Logger
}

// Rig is a set of simulated devices in one directory, each on its own
// pseudo-terminal behind a link (the wedge reader: a FIFO of input_event
// records), driven by text commands (see Help). It is what cmd/termsim
// runs; tests can run one in-process. Safe for concurrent use.
type Rig struct {
	dir   string
	log   zerolog.Logger
	plugs map[string]plugger

	card   *CardReader
	relay  *Relay
	finger *Fingerprint
	face   *Face
	keypad *Keypad
	wedge  *InputDevice
	doorio *InputDevice
}

// plugger is a device's cable: a Plug (pseudo-terminal devices) or an
// InputDevice (its FIFO).
type plugger interface {
	Path() string
	Plugged() bool
	Unplug() error
	Replug() error
	Close() error
}

var (
	_ plugger = (*Plug)(nil)
	_ plugger = (*InputDevice)(nil)
)

// NewRig creates the devices and plugs them in. The caller closes the Rig,
// which unplugs every device and removes the links.
func NewRig(cfg RigConfig) (*Rig, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sim: rig: no directory")
	}
	devices := cfg.Devices
	if len(devices) == 0 {
		devices = AllDevices
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sim: rig: %w", err)
	}
	r := &Rig{dir: cfg.Dir, log: cfg.Log, plugs: make(map[string]plugger)}
	for _, name := range devices {
		if _, dup := r.plugs[name]; dup {
			r.Close()
			return nil, fmt.Errorf("sim: rig: device %q listed twice", name)
		}
		var dev Device
		var err error
		switch name {
		case DevCard:
			r.card, err = NewCardReader(cfg.Card)
			dev = r.card
		case DevRelay:
			r.relay, err = NewRelay(cfg.Relay)
			dev = r.relay
		case DevFingerprint:
			r.finger, err = NewFingerprint(cfg.Fingerprint)
			dev = r.finger
		case DevFace:
			r.face, err = NewFace(cfg.Face)
			dev = r.face
		case DevKeypad:
			r.keypad, err = NewKeypad(cfg.Keypad)
			dev = r.keypad
		case DevWedge, DevDoorIO:
			in, icfg := &r.wedge, cfg.Wedge
			if name == DevDoorIO {
				in, icfg = &r.doorio, cfg.DoorIO
			}
			if *in, err = NewInputDevice(filepath.Join(cfg.Dir, name), icfg); err != nil {
				r.Close()
				return nil, err
			}
			r.plugs[name] = *in
			continue
		default:
			err = fmt.Errorf("sim: rig: unknown device %q (want %s)", name, strings.Join(AllDevices, ", "))
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		pl, err := Attach(dev, filepath.Join(cfg.Dir, name))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.plugs[name] = pl
	}
	return r, nil
}

// Path returns the link a driver opens for device name, or "" if the Rig
// has no such device.
func (r *Rig) Path(name string) string {
	if pl := r.plugs[name]; pl != nil {
		return pl.Path()
	}
	return ""
}

// Devices returns the Rig's device names in display order.
func (r *Rig) Devices() []string {
	var out []string
	for _, n := range AllDevices {
		if r.plugs[n] != nil {
			out = append(out, n)
		}
	}
	return out
}

// Card, Relay, Fingerprint and Face return the devices (nil when absent),
// for tests that want more than the commands offer.
func (r *Rig) Card() *CardReader { return r.card }

// Relay returns the relay board, or nil.
func (r *Rig) Relay() *Relay { return r.relay }

// Fingerprint returns the fingerprint module, or nil.
func (r *Rig) Fingerprint() *Fingerprint { return r.finger }

// Face returns the face module, or nil.
func (r *Rig) Face() *Face { return r.face }

// Keypad returns the serial keypad, or nil.
func (r *Rig) Keypad() *Keypad { return r.keypad }

// Wedge returns the keyboard-wedge card reader, or nil.
func (r *Rig) Wedge() *InputDevice { return r.wedge }

// DoorIO returns the door inputs' input device, or nil.
func (r *Rig) DoorIO() *InputDevice { return r.doorio }

// Close unplugs every device and removes its link; idempotent.
func (r *Rig) Close() error {
	var errs []error
	for _, pl := range r.plugs {
		errs = append(errs, pl.Close())
	}
	return errors.Join(errs...)
}

// Help is the command reference; cmd/termsim prints it.
const Help = `Commands (one per line; the reply is one line, "ok ..." or "err ..."):
  swipe NUMBER            present a card: decimal digits (the number printed
                          on the card, e.g. 0006547886) or 0x and the
                          identifier bytes in hex (e.g. 0x010063E9AE)
  finger SLOT             place the finger whose template is stored at SLOT
  finger unknown          place a finger that matches no stored template
  face ID                 show the face of enrolled user ID
  face stranger           show a face that belongs to nobody
  pin KEYS                press KEYS on the serial keypad, a person's pace
                          apart: 0-9 * # A-D (e.g. pin 1234#), or one of
                          the words enter, esc, bs
  wedge NUMBER            the USB keyboard-wedge reader types NUMBER (0-9,
                          A-F) and Enter
  unplug DEVICE           pull DEVICE's cable (card, relay, fingerprint,
                          face, keypad, wedge, doorio)
  replug DEVICE           plug it back in at the same path
  noise DEVICE N          DEVICE sends N random bytes (1..4096)
  door open|closed        set the door-position sensor (the relay board's
                          model of the door, and the doorio switch)
  button                  press and release the exit button (doorio)
  relay?                  report the relay: "ok relay on|off door open|closed switches N"
  await relay on|off [D]  wait up to D (default 10s) until the relay is on/off
  status?                 report every device: plugged or not, and its path
  wait D                  pause for D (e.g. 500ms, 2s; at most 5m)
  help                    this list
Lines starting with # and blank lines are ignored.`

// Exec runs one command line and returns its reply line, without a line
// end. Commands that wait (wait, await, swipe's repeats) honour ctx.
func (r *Rig) Exec(ctx context.Context, line string) string {
	reply, err := r.exec(ctx, line)
	if err != nil {
		r.log.Info().Str(logCommand, line).Err(err).Msg("command failed")
		return "err " + oneLine(err.Error())
	}
	r.log.Info().Str(logCommand, line).Msg("command")
	if reply == "" {
		return "ok"
	}
	return "ok " + reply
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

func (r *Rig) exec(ctx context.Context, line string) (string, error) {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return "", nil
	}
	cmd, args := strings.ToLower(f[0]), f[1:]
	argc := func(min, max int) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("%s: wrong number of arguments (try help)", cmd)
		}
		return nil
	}
	switch cmd {
	case "help", "?":
		return strings.ReplaceAll(Help, "\n", " | "), nil
	case "swipe":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.card == nil {
			return "", errors.New("swipe: no card reader")
		}
		return "", r.card.Swipe(ctx, args[0])
	case "finger":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.finger == nil {
			return "", errors.New("finger: no fingerprint module")
		}
		if strings.EqualFold(args[0], "unknown") {
			return "", r.finger.PlaceUnknownFinger()
		}
		slot, err := strconv.Atoi(args[0])
		if err != nil {
			return "", fmt.Errorf("finger: %q is neither a slot number nor unknown", args[0])
		}
		return "", r.finger.PlaceFinger(slot)
	case "face":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.face == nil {
			return "", errors.New("face: no face module")
		}
		if strings.EqualFold(args[0], "stranger") {
			return "", r.face.ShowStranger()
		}
		id, err := strconv.Atoi(args[0])
		if err != nil {
			return "", fmt.Errorf("face: %q is neither a user id nor stranger", args[0])
		}
		return "", r.face.ShowFace(id)
	case "pin":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.keypad == nil {
			return "", errors.New("pin: no keypad")
		}
		return "", r.keypad.Press(ctx, args[0])
	case "wedge":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.wedge == nil {
			return "", errors.New("wedge: no keyboard-wedge reader")
		}
		if len(args[0]) > 32 || strings.Trim(strings.ToUpper(args[0]), "0123456789ABCDEF") != "" {
			return "", fmt.Errorf("wedge: %q is not 1..32 decimal or hex digits", args[0])
		}
		return "", r.wedge.Type(ctx, args[0]+"\n", 0)
	case "unplug", "replug":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		pl := r.plugs[strings.ToLower(args[0])]
		if pl == nil {
			return "", fmt.Errorf("%s: no device %q (have %s)", cmd, args[0], strings.Join(r.Devices(), ", "))
		}
		if cmd == "unplug" {
			return "", pl.Unplug()
		}
		return "", pl.Replug()
	case "noise":
		if err := argc(2, 2); err != nil {
			return "", err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > maxNoise {
			return "", fmt.Errorf("noise: %q is not a byte count 1..%d", args[1], maxNoise)
		}
		switch strings.ToLower(args[0]) {
		case DevCard:
			if r.card != nil {
				return "", r.card.Noise(n)
			}
		case DevFingerprint:
			if r.finger != nil {
				return "", r.finger.Noise(n)
			}
		case DevFace:
			if r.face != nil {
				return "", r.face.Noise(n)
			}
		case DevKeypad:
			if r.keypad != nil {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(rand.Uint32())
				}
				return "", r.keypad.WriteRaw(b)
			}
		case DevRelay:
			return "", errors.New("noise: the relay board only listens")
		case DevWedge, DevDoorIO:
			return "", errors.New("noise: the input device delivers whole records")
		}
		return "", fmt.Errorf("noise: no device %q (have %s)", args[0], strings.Join(r.Devices(), ", "))
	case "door":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		if r.relay == nil && r.doorio == nil {
			return "", errors.New("door: no relay and no doorio")
		}
		var open bool
		switch strings.ToLower(args[0]) {
		case "open":
			open = true
		case "closed", "close", "shut":
		default:
			return "", fmt.Errorf("door: %q is neither open nor closed", args[0])
		}
		if r.relay != nil {
			r.relay.SetDoorOpen(open)
		}
		if r.doorio != nil {
			return "", r.doorio.SetDoor(open)
		}
		return "", nil
	case "button":
		if err := argc(0, 0); err != nil {
			return "", err
		}
		if r.doorio == nil {
			return "", errors.New("button: no doorio")
		}
		return "", r.doorio.PressExit()
	case "relay?", "relay":
		if err := argc(0, 0); err != nil {
			return "", err
		}
		if r.relay == nil {
			return "", errors.New("relay?: no relay")
		}
		return relayReport(r.relay.State()), nil
	case "await":
		return r.await(ctx, args)
	case "status?", "status":
		if err := argc(0, 0); err != nil {
			return "", err
		}
		var parts []string
		for _, n := range r.Devices() {
			state := "unplugged"
			if r.plugs[n].Plugged() {
				state = "plugged"
			}
			parts = append(parts, fmt.Sprintf("%s %s %s", n, state, r.plugs[n].Path()))
		}
		return strings.Join(parts, "; "), nil
	case "wait", "sleep":
		if err := argc(1, 1); err != nil {
			return "", err
		}
		d, err := parseWait(args[0])
		if err != nil {
			return "", fmt.Errorf("wait: %w", err)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("unknown command %q (try help)", f[0])
}

func relayReport(s RelayState) string {
	on, door := "off", "closed"
	if s.On {
		on = "on"
	}
	if s.DoorOpen {
		door = "open"
	}
	return fmt.Sprintf("relay %s door %s switches %d", on, door, s.Switches)
}

// await relay on|off [D]
func (r *Rig) await(ctx context.Context, args []string) (string, error) {
	if len(args) < 2 || len(args) > 3 || !strings.EqualFold(args[0], DevRelay) {
		return "", errors.New("await: want await relay on|off [timeout]")
	}
	if r.relay == nil {
		return "", errors.New("await: no relay")
	}
	var want bool
	switch strings.ToLower(args[1]) {
	case "on":
		want = true
	case "off":
	default:
		return "", fmt.Errorf("await: %q is neither on nor off", args[1])
	}
	d := DefaultAwait
	if len(args) == 3 {
		var err error
		if d, err = parseWait(args[2]); err != nil {
			return "", fmt.Errorf("await: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	s, err := r.relay.Wait(ctx, func(s RelayState) bool { return s.On == want })
	if err != nil {
		return "", fmt.Errorf("await relay %s: not within %v (%s)", args[1], d, relayReport(s))
	}
	return relayReport(s), nil
}

func parseWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 500ms, 2s)", s)
	}
	if d < 0 || d > MaxWait {
		return 0, fmt.Errorf("%v is outside 0..%v", d, MaxWait)
	}
	return d, nil
}

// RunScript runs a scenario: every line of rd as a command, in order,
// writing "> command" and the reply for each to out. It stops at the first
// failing command and returns its error, naming the line.
func (r *Rig) RunScript(ctx context.Context, rd io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, MaxCommandLen), MaxCommandLen)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		reply := r.Exec(ctx, line)
		fmt.Fprintf(out, "> %s\n%s\n", line, reply)
		if msg, failed := strings.CutPrefix(reply, "err "); failed {
			return fmt.Errorf("scenario line %d: %s: %s: %w", n, line, msg, ErrCommand)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	return nil
}

// ServeControl answers control connections on ln until ctx is done, then
// closes ln and every connection. Each connection sends command lines and
// gets one reply line per command; at most 16 connections are served at
// once, and a line longer than MaxCommandLen ends its connection.
func (r *Rig) ServeControl(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := make(map[net.Conn]struct{})
	closeAll := func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	sem := make(chan struct{}, maxControlConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			closeAll()
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: control: accept: %w", err)
		}
		select {
		case sem <- struct{}{}:
		default:
			fmt.Fprintf(c, "err busy: %d control connections already\n", maxControlConns)
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.serveConn(ctx, c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

func (r *Rig) serveConn(ctx context.Context, c net.Conn) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, MaxCommandLen), MaxCommandLen)
	w := bufio.NewWriter(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, err := w.WriteString(r.Exec(ctx, line) + "\n"); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		fmt.Fprintf(c, "err command longer than %d bytes\n", MaxCommandLen)
	}
}

// Control is a client of a Rig's control socket (cmd/termsim -control).
// Its methods are safe for concurrent use; commands are sent one at a time.
type Control struct {
	mu     sync.Mutex
	conn   net.Conn
	rd     *bufio.Reader
	broken error // set when a reply was left unread; every later Do fails
}

// Dial connects to the control socket at path (a unix socket). The caller
// closes the Control.
func Dial(ctx context.Context, path string) (*Control, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("sim: dial control %s: %w", path, err)
	}
	return &Control{conn: conn, rd: bufio.NewReaderSize(conn, MaxCommandLen)}, nil
}

// Do sends one command line and returns the reply's text after "ok". A
// reply "err …" is returned as an error wrapping ErrCommand; a broken
// connection or a done ctx as that error. Once ctx has cut a command short
// its reply is lost, so the Control is broken: dial again.
func (c *Control) Do(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\r\n") || len(command) >= MaxCommandLen {
		return "", fmt.Errorf("sim: control: command %.40q: more than one line or too long: %w", command, ErrCommand)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return "", fmt.Errorf("sim: control: %s: %w", command, c.broken)
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c.conn, command+"\n"); err != nil {
		return "", c.ioErr(ctx, command, err)
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return "", c.ioErr(ctx, command, err)
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "ok":
		return "", nil
	case strings.HasPrefix(line, "ok "):
		return line[3:], nil
	case strings.HasPrefix(line, "err "):
		return "", fmt.Errorf("sim: %s: %s: %w", command, line[4:], ErrCommand)
	}
	return "", fmt.Errorf("sim: %s: unexpected reply %q", command, line)
}

func (c *Control) ioErr(ctx context.Context, command string, err error) error {
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	c.broken = fmt.Errorf("connection broken by an earlier command: %w", err)
	return fmt.Errorf("sim: control: %s: %w", command, err)
}

// Swipe presents a card (see Help for number's syntax).
func (c *Control) Swipe(ctx context.Context, number string) error {
	_, err := c.Do(ctx, "swipe "+number)
	return err
}

// Finger places the finger stored at slot; slot < 0 places an unknown one.
func (c *Control) Finger(ctx context.Context, slot int) error {
	arg := "unknown"
	if slot >= 0 {
		arg = strconv.Itoa(slot)
	}
	_, err := c.Do(ctx, "finger "+arg)
	return err
}

// Face shows user id's face; id < 0 shows a stranger.
func (c *Control) Face(ctx context.Context, id int) error {
	arg := "stranger"
	if id >= 0 {
		arg = strconv.Itoa(id)
	}
	_, err := c.Do(ctx, "face "+arg)
	return err
}

// Pin presses keys on the serial keypad (see Help: "1234#", "enter").
func (c *Control) Pin(ctx context.Context, keys string) error {
	_, err := c.Do(ctx, "pin "+keys)
	return err
}

// Wedge makes the keyboard-wedge reader type number and Enter.
func (c *Control) Wedge(ctx context.Context, number string) error {
	_, err := c.Do(ctx, "wedge "+number)
	return err
}

// Button presses and releases the exit button (doorio).
func (c *Control) Button(ctx context.Context) error {
	_, err := c.Do(ctx, "button")
	return err
}

// Unplug pulls device's cable; Replug plugs it back.
func (c *Control) Unplug(ctx context.Context, device string) error {
	_, err := c.Do(ctx, "unplug "+device)
	return err
}

// Replug plugs device back in at the same path.
func (c *Control) Replug(ctx context.Context, device string) error {
	_, err := c.Do(ctx, "replug "+device)
	return err
}

// Door sets the door-position sensor.
func (c *Control) Door(ctx context.Context, open bool) error {
	arg := "closed"
	if open {
		arg = "open"
	}
	_, err := c.Do(ctx, "door "+arg)
	return err
}

// RelayOn reports whether the relay is on (lock released).
func (c *Control) RelayOn(ctx context.Context) (bool, error) {
	reply, err := c.Do(ctx, "relay?")
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(reply, "relay on"), nil
}

// AwaitRelay waits up to d (at most 5m) until the relay is on (or off).
func (c *Control) AwaitRelay(ctx context.Context, on bool, d time.Duration) error {
	state := "off"
	if on {
		state = "on"
	}
	_, err := c.Do(ctx, fmt.Sprintf("await relay %s %s", state, d))
	return err
}

// Close closes the connection; idempotent.
func (c *Control) Close() error {
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
