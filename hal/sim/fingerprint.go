package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// The fingerprint simulator speaks the module side of the Synochip /
// ZhianTec 0xEF01 protocol (R30x, AS608, ZFM, R503), after the ZFM-20 and
// R503 user manuals. Its codec is written here afresh rather than borrowed
// from hal/fingerprint, so a bug on one side cannot hide the same bug on the
// other; the golden vectors pin both.

// Packet identifiers (the byte after the address).
const (
	fpPIDCommand = 0x01 // host → module: a command
	fpPIDData    = 0x02 // a data packet, more follow
	fpPIDAck     = 0x07 // module → host: the reply to a command
	fpPIDEnd     = 0x08 // the last data packet
)

// Instruction codes (the first content byte of a command), with the
// datasheets' names.
const (
	fpGenImg         = 0x01 // capture a finger image
	fpImg2Tz         = 0x02 // image → character buffer
	fpMatch          = 0x03 // compare the two character buffers
	fpSearch         = 0x04 // search the library for a buffer
	fpStore          = 0x06 // buffer → library slot
	fpLoadChar       = 0x07 // library slot → buffer
	fpUpChar         = 0x08 // upload a buffer to the host
	fpDownChar       = 0x09 // download a buffer from the host
	fpDeleteChar     = 0x0C // delete library slots
	fpEmpty          = 0x0D // clear the library
	fpReadSysPara    = 0x0F // system parameters
	fpVfyPwd         = 0x13 // verify the password
	fpHiSpeedSearch  = 0x1B // Search, faster
	fpTempleteNum    = 0x1D // number of stored templates (sic)
	fpReadIndexTable = 0x1F // occupied slots of one 256-slot page
	fpHandShake      = 0x40 // is the module alive
)

// Confirmation codes (the first content byte of an ACK).
const (
	fpOK            = 0x00
	fpErrPacket     = 0x01 // error receiving the packet
	fpErrNoFinger   = 0x02 // no finger on the sensor
	fpErrNoMatch    = 0x08 // the buffers do not match
	fpErrNotFound   = 0x09 // no template found
	fpErrBadSlot    = 0x0B // slot beyond the library
	fpErrBadBuffer  = 0x0C // no valid template in the buffer or slot
	fpErrUpload     = 0x0D // nothing to upload
	fpErrDelete     = 0x10 // cannot delete
	fpErrBadPwd     = 0x13 // wrong password
	fpErrNoImage    = 0x15 // no valid image in the image buffer
	fpErrVerifyPwd  = 0x21 // the password must be verified first
	fpErrBadCommand = 0xFC // unsupported command (R503's code)
)

// Limits of the simulated fingerprint module.
const (
	fpMaxCapacity   = 1024 // four index-table pages of 256 slots
	fpMaxTemplate   = 4096 // bytes a character buffer holds
	fpMaxContent    = 256  // content bytes per packet
	fpHeaderLen     = 9
	fpDefaultAddr   = 0xFFFFFFFF
	fpMatchScore    = 100 // score of every hit: matching is exact here
	fpPendingFinger = 16  // fingers queued by PlaceFinger
)

// FingerprintConfig configures a simulated fingerprint module. Zero values
// mean the documented defaults.
type FingerprintConfig struct {
	// Address is the module address; zero means 0xFFFFFFFF.
	Address uint32
	// Password is the module password; zero means none (the factory
	// default 0), otherwise VfyPwd must succeed before other commands.
	Password uint32
	// Capacity is the number of template slots, 1..1024; zero means 200.
	Capacity int
	// PacketSize is the data bytes per data packet, 32, 64, 128 or 256;
	// zero means 128 (the factory default).
	PacketSize int
	// TemplateSize is the size of a template in bytes, 32..4096; a DownChar
	// of any other size is refused. Zero means 512.
	TemplateSize int
	// BaudN is the baud-rate multiple ReadSysPara reports (bps = 9600·N);
	// zero means 6 (57600). The pseudo-terminal does not enforce it.
	BaudN int
	// ResetByte makes Serve start by sending the unframed 0x55 an R503
	// sends after power-on (a replug is a power cycle).
	ResetByte bool
}

// ReplyFaults are faults a simulated module injects into its replies; the
// zero value injects none. Counters are consumed one per reply.
type ReplyFaults struct {
	// Corrupt sends the next Corrupt replies with a wrong checksum/parity.
	Corrupt int
	// Drop swallows the next Drop replies (silence for one command each).
	Drop int
	// Silent swallows every reply until the faults are changed.
	Silent bool
	// Delay holds every reply back this long.
	Delay time.Duration
	// Stray is written before every reply (e.g. 0x55, the R503's reset byte).
	Stray []byte
	// Split writes every reply in two parts with Delay/2 (at least 20 ms)
	// between them, so the host sees partial frames.
	Split bool
}

// Fingerprint is a simulated 0xEF01 fingerprint module: password and
// address, system parameters, two character buffers, an image buffer and a
// slot → template library of Capacity slots, kept across Serve calls (a
// replug keeps the flash). Matching is deterministic: a finger matches the
// slots whose stored template equals its template byte for byte.
//
// Control methods for tests and cmd/termsim, all safe for concurrent use
// with Serve:
//
//   - PlaceFinger(slot) puts the finger enrolled at slot on the sensor;
//     PlaceUnknownFinger puts a finger that matches nothing; PlaceTemplate
//     a finger with the given template. Each placed finger is captured by
//     exactly one GenImg and then lifted, so one placement gives one
//     identification; up to 16 placements queue.
//   - Template(n) makes the deterministic template of synthetic finger n,
//     for the host to Store; Stored/Slots read the library.
//   - SetFaults injects reply faults; Noise writes line noise.
//   - Polls counts GenImg commands, so tests can wait until a driver polls.
type Fingerprint struct {
	cfg  FingerprintConfig
	wire wire

	mu      sync.Mutex
	library map[int][]byte
	fingers [][]byte // placed fingers' templates, oldest first
	faults  ReplyFaults
	polls   int
	unknown int // unknown fingers made so far

	// Serve-only state (one Serve at a time, guarded by serving).
	serving  sync.Mutex
	verified bool
	image    []byte
	buffers  [3][]byte // CharBuffer1 and 2; index 0 unused
	down     *fpDownload
}

// fpDownload is a DownChar in progress.
type fpDownload struct {
	buf  int
	data []byte
	bad  bool
}

var _ Device = (*Fingerprint)(nil)

// NewFingerprint returns a simulated fingerprint module with an empty
// library; it fails on an out-of-range Config field.
func NewFingerprint(cfg FingerprintConfig) (*Fingerprint, error) {
	if cfg.Address == 0 {
		cfg.Address = fpDefaultAddr
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 200
	}
	if cfg.PacketSize == 0 {
		cfg.PacketSize = 128
	}
	if cfg.TemplateSize == 0 {
		cfg.TemplateSize = 512
	}
	if cfg.BaudN == 0 {
		cfg.BaudN = 6
	}
	switch {
	case cfg.Capacity < 1 || cfg.Capacity > fpMaxCapacity:
		return nil, fmt.Errorf("sim: fingerprint: capacity %d out of range 1..%d", cfg.Capacity, fpMaxCapacity)
	case fpPacketCode(cfg.PacketSize) < 0:
		return nil, fmt.Errorf("sim: fingerprint: packet size %d is not 32, 64, 128 or 256", cfg.PacketSize)
	case cfg.TemplateSize < 32 || cfg.TemplateSize > fpMaxTemplate:
		return nil, fmt.Errorf("sim: fingerprint: template size %d out of range 32..%d", cfg.TemplateSize, fpMaxTemplate)
	case cfg.BaudN < 1 || cfg.BaudN > 12:
		return nil, fmt.Errorf("sim: fingerprint: baud multiple %d out of range 1..12", cfg.BaudN)
	}
	return &Fingerprint{cfg: cfg, library: make(map[int][]byte)}, nil
}

func fpPacketCode(size int) int {
	switch size {
	case 32:
		return 0
	case 64:
		return 1
	case 128:
		return 2
	case 256:
		return 3
	}
	return -1
}

// Template returns the template of synthetic finger n: TemplateSize bytes
// starting 03 01 like a real R30x template, the rest derived from n. The
// same n always gives the same bytes; different n give different bytes.
func (f *Fingerprint) Template(n int) []byte {
	t := make([]byte, f.cfg.TemplateSize)
	t[0], t[1] = 0x03, 0x01
	binary.BigEndian.PutUint64(t[2:10], uint64(n))
	r := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	for i := 10; i < len(t); i++ {
		t[i] = byte(r.Uint32())
	}
	return t
}

// PlaceFinger puts on the sensor the finger whose template is stored at
// slot. It fails when the slot is empty or the queue of placed fingers is
// full.
func (f *Fingerprint) PlaceFinger(slot int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.library[slot]
	if !ok {
		return fmt.Errorf("sim: fingerprint: place finger of slot %d: slot is empty", slot)
	}
	return f.placeLocked(t)
}

// PlaceUnknownFinger puts on the sensor a finger that matches no stored
// template. It fails when the queue of placed fingers is full.
func (f *Fingerprint) PlaceUnknownFinger() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		f.unknown++
		t := f.Template(-f.unknown)
		if !f.storedLocked(t) {
			return f.placeLocked(t)
		}
	}
}

// PlaceTemplate puts on the sensor a finger whose template is t (it
// matches the slots that store exactly t). It fails when t is empty or
// longer than 4096 bytes, or the queue is full.
func (f *Fingerprint) PlaceTemplate(t []byte) error {
	if len(t) == 0 || len(t) > fpMaxTemplate {
		return fmt.Errorf("sim: fingerprint: place template of %d bytes: want 1..%d", len(t), fpMaxTemplate)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.placeLocked(slices.Clone(t))
}

func (f *Fingerprint) placeLocked(t []byte) error {
	if len(f.fingers) >= fpPendingFinger {
		return fmt.Errorf("sim: fingerprint: %d fingers already wait on the sensor", len(f.fingers))
	}
	f.fingers = append(f.fingers, t)
	return nil
}

func (f *Fingerprint) storedLocked(t []byte) bool {
	for _, s := range f.library {
		if slices.Equal(s, t) {
			return true
		}
	}
	return false
}

// FingersWaiting returns how many placed fingers no GenImg has captured yet.
func (f *Fingerprint) FingersWaiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fingers)
}

// Stored returns a copy of the template at slot and whether there is one.
func (f *Fingerprint) Stored(slot int) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.library[slot]
	return slices.Clone(t), ok
}

// Slots returns the occupied slots in ascending order.
func (f *Fingerprint) Slots() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := make([]int, 0, len(f.library))
	for k := range f.library {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// Polls returns how many GenImg commands the module has answered.
func (f *Fingerprint) Polls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

// SetFaults replaces the reply faults; the zero ReplyFaults clears them.
func (f *Fingerprint) SetFaults(rf ReplyFaults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rf.Stray = slices.Clone(rf.Stray)
	f.faults = rf
}

// Noise writes n random bytes (at most 4096) to the host, as a noisy line
// would. It returns ErrUnplugged while no Serve runs.
func (f *Fingerprint) Noise(n int) error {
	return rfNoise(&f.wire, n)
}

// WriteRaw writes b to the host as is, between replies (tests use it for
// stray bytes and false packet starts). It returns ErrUnplugged while no
// Serve runs.
func (f *Fingerprint) WriteRaw(b []byte) error {
	if err := f.wire.write(b); err != nil {
		return fmt.Errorf("sim: fingerprint: %w", err)
	}
	return nil
}

// rfNoise writes n random bytes through w.
func rfNoise(w *wire, n int) error {
	if n < 0 || n > maxNoise {
		return fmt.Errorf("sim: noise of %d bytes out of range 0..%d", n, maxNoise)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return w.write(b)
}

// Serve speaks the module side on port until ctx is done (ctx.Err()) or
// port fails (the error). Packets for another address are ignored; a
// command with a bad checksum is answered with confirmation code 0x01.
func (f *Fingerprint) Serve(ctx context.Context, port io.ReadWriter) error {
	f.serving.Lock()
	defer f.serving.Unlock()
	defer f.wire.attach(port)()
	defer wakeOnDone(ctx, port)()
	// Power-on: volatile state is gone, the password must be verified again.
	f.verified, f.image, f.buffers, f.down = false, nil, [3][]byte{}, nil
	if f.cfg.ResetByte {
		_ = f.wire.write([]byte{0x55})
	}

	var in []byte
	buf := make([]byte, 1024)
	for {
		n, err := port.Read(buf)
		in = append(in, buf[:n]...)
		for {
			pid, addr, content, used, ok := fpParse(in)
			if used == 0 {
				break
			}
			in = in[used:]
			if ok && addr == f.cfg.Address {
				f.handle(ctx, pid, content)
			} else if !ok && addr == f.cfg.Address && pid == fpPIDCommand {
				f.reply(ctx, []byte{fpErrPacket})
			}
		}
		if len(in) > 2*(fpHeaderLen+fpMaxContent+2) {
			in = in[len(in)-(fpHeaderLen+fpMaxContent+2):]
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sim: fingerprint: read: %w", err)
		}
	}
}

// fpParse finds one packet in b. used is 0 when more bytes are needed;
// otherwise b[:used] is consumed and ok says whether it was a valid packet
// (when not, pid and addr are those of the corrupt header, if any).
func fpParse(b []byte) (pid byte, addr uint32, content []byte, used int, ok bool) {
	i := 0
	for i+1 < len(b) && (b[i] != 0xEF || b[i+1] != 0x01) {
		i++
	}
	if i > 0 {
		return 0, 0, nil, i, false // stray bytes
	}
	if len(b) < fpHeaderLen {
		return 0, 0, nil, 0, false
	}
	addr = binary.BigEndian.Uint32(b[2:6])
	pid = b[6]
	n := int(binary.BigEndian.Uint16(b[7:9]))
	if n < 3 || n > fpMaxContent+2 {
		return pid, addr, nil, 1, false
	}
	if len(b) < fpHeaderLen+n {
		return 0, 0, nil, 0, false
	}
	content = b[fpHeaderLen : fpHeaderLen+n-2]
	if binary.BigEndian.Uint16(b[fpHeaderLen+n-2:]) != fpSum(pid, content) {
		return pid, addr, nil, 1, false
	}
	return pid, addr, slices.Clone(content), fpHeaderLen + n, true
}

func fpSum(pid byte, content []byte) uint16 {
	n := len(content) + 2
	s := int(pid) + n>>8 + n&0xFF
	for _, c := range content {
		s += int(c)
	}
	return uint16(s)
}

// fpEncode returns the wire bytes of one packet from this module.
func (f *Fingerprint) fpEncode(pid byte, content []byte) []byte {
	b := []byte{0xEF, 0x01}
	b = binary.BigEndian.AppendUint32(b, f.cfg.Address)
	b = append(b, pid)
	b = binary.BigEndian.AppendUint16(b, uint16(len(content)+2))
	b = append(b, content...)
	return binary.BigEndian.AppendUint16(b, fpSum(pid, content))
}

// reply sends an ACK with the given content, applying the reply faults.
func (f *Fingerprint) reply(ctx context.Context, content []byte) {
	f.send(ctx, f.fpEncode(fpPIDAck, content))
}

// send writes one frame to the host applying the reply faults.
func (f *Fingerprint) send(ctx context.Context, frame []byte) {
	f.mu.Lock()
	rf := f.faults
	if f.faults.Drop > 0 {
		f.faults.Drop--
	}
	if f.faults.Corrupt > 0 {
		f.faults.Corrupt--
	}
	f.mu.Unlock()
	rfSend(ctx, &f.wire, frame, rf)
}

// rfSend writes frame through w with the faults rf describes (the
// counters in rf are the values before this frame consumed one). The last
// byte (checksum or parity) is the one corrupted.
func rfSend(ctx context.Context, w *wire, frame []byte, rf ReplyFaults) {
	if rf.Silent || rf.Drop > 0 {
		return
	}
	if rf.Corrupt > 0 {
		frame = slices.Clone(frame)
		frame[len(frame)-1] ^= 0x5A
	}
	if !rfPause(ctx, rf.Delay) {
		return
	}
	if len(rf.Stray) > 0 {
		if w.write(rf.Stray) != nil {
			return
		}
	}
	if rf.Split && len(frame) > 1 {
		half := len(frame) / 2
		if w.write(frame[:half]) != nil || !rfPause(ctx, max(rf.Delay/2, 20*time.Millisecond)) {
			return
		}
		frame = frame[half:]
	}
	_ = w.write(frame) // a failed write is the host's line gone: Serve sees it on read
}

// rfPause waits d or until ctx is done; it reports whether d passed.
func rfPause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// handle carries out one valid packet addressed to this module.
func (f *Fingerprint) handle(ctx context.Context, pid byte, c []byte) {
	if pid == fpPIDData || pid == fpPIDEnd {
		f.receiveData(pid, c)
		return
	}
	if pid != fpPIDCommand {
		return // an ACK from the host: nothing to do
	}
	if f.down != nil { // a command ends an unfinished download
		f.down = nil
		f.buffers[1], f.buffers[2] = nil, nil
	}
	instr, p := c[0], c[1:]
	if f.cfg.Password != 0 && !f.verified && instr != fpVfyPwd {
		f.reply(ctx, []byte{fpErrVerifyPwd})
		return
	}
	short := func(n int) bool {
		if len(p) < n {
			f.reply(ctx, []byte{fpErrPacket})
			return true
		}
		return false
	}
	switch instr {
	case fpVfyPwd:
		if short(4) {
			return
		}
		if binary.BigEndian.Uint32(p) != f.cfg.Password {
			f.reply(ctx, []byte{fpErrBadPwd})
			return
		}
		f.verified = true
		f.reply(ctx, []byte{fpOK})
	case fpHandShake:
		f.reply(ctx, []byte{fpOK})
	case fpReadSysPara:
		r := []byte{fpOK, 0, 0, 0, 0}
		r = binary.BigEndian.AppendUint16(r, uint16(f.cfg.Capacity))
		r = binary.BigEndian.AppendUint16(r, 3)
		r = binary.BigEndian.AppendUint32(r, f.cfg.Address)
		r = binary.BigEndian.AppendUint16(r, uint16(fpPacketCode(f.cfg.PacketSize)))
		r = binary.BigEndian.AppendUint16(r, uint16(f.cfg.BaudN))
		f.reply(ctx, r)
	case fpReadIndexTable:
		if short(1) {
			return
		}
		page := int(p[0])
		if page*256 >= f.cfg.Capacity {
			f.reply(ctx, []byte{fpErrBadSlot})
			return
		}
		table := make([]byte, 33)
		f.mu.Lock()
		for slot := range f.library {
			if slot/256 == page {
				i := slot % 256
				table[1+i/8] |= 1 << (i % 8)
			}
		}
		f.mu.Unlock()
		f.reply(ctx, table)
	case fpTempleteNum:
		f.mu.Lock()
		n := len(f.library)
		f.mu.Unlock()
		f.reply(ctx, []byte{fpOK, byte(n >> 8), byte(n)})
	case fpGenImg:
		f.mu.Lock()
		f.polls++
		var t []byte
		if len(f.fingers) > 0 {
			t = f.fingers[0]
			f.fingers = f.fingers[1:]
		}
		f.mu.Unlock()
		if t == nil {
			f.reply(ctx, []byte{fpErrNoFinger})
			return
		}
		f.image = t
		f.reply(ctx, []byte{fpOK})
	case fpImg2Tz:
		if short(1) {
			return
		}
		if f.image == nil {
			f.reply(ctx, []byte{fpErrNoImage})
			return
		}
		f.buffers[fpBuffer(p[0])] = slices.Clone(f.image)
		f.reply(ctx, []byte{fpOK})
	case fpMatch:
		if f.buffers[1] != nil && slices.Equal(f.buffers[1], f.buffers[2]) {
			f.reply(ctx, []byte{fpOK, 0, fpMatchScore})
			return
		}
		f.reply(ctx, []byte{fpErrNoMatch, 0, 0})
	case fpSearch, fpHiSpeedSearch:
		if short(5) {
			return
		}
		t := f.buffers[fpBuffer(p[0])]
		start := int(binary.BigEndian.Uint16(p[1:3]))
		count := int(binary.BigEndian.Uint16(p[3:5]))
		f.mu.Lock()
		hit := -1
		for slot := start; slot < start+count && slot < f.cfg.Capacity; slot++ {
			if s, ok := f.library[slot]; ok && t != nil && slices.Equal(s, t) {
				hit = slot
				break
			}
		}
		f.mu.Unlock()
		if hit < 0 {
			f.reply(ctx, []byte{fpErrNotFound, 0, 0, 0, 0})
			return
		}
		f.reply(ctx, []byte{fpOK, byte(hit >> 8), byte(hit), 0, fpMatchScore})
	case fpDownChar:
		if short(1) {
			return
		}
		f.reply(ctx, []byte{fpOK})
		f.down = &fpDownload{buf: fpBuffer(p[0])}
	case fpUpChar:
		if short(1) {
			return
		}
		t := f.buffers[fpBuffer(p[0])]
		if t == nil {
			f.reply(ctx, []byte{fpErrUpload})
			return
		}
		f.reply(ctx, []byte{fpOK})
		for len(t) > 0 {
			n := min(len(t), f.cfg.PacketSize)
			pid := byte(fpPIDData)
			if n == len(t) {
				pid = fpPIDEnd
			}
			f.send(ctx, f.fpEncode(pid, t[:n]))
			t = t[n:]
		}
	case fpLoadChar, fpStore:
		if short(3) {
			return
		}
		b := fpBuffer(p[0])
		slot := int(binary.BigEndian.Uint16(p[1:3]))
		if slot >= f.cfg.Capacity {
			f.reply(ctx, []byte{fpErrBadSlot})
			return
		}
		f.mu.Lock()
		code := byte(fpOK)
		if instr == fpLoadChar {
			if t, ok := f.library[slot]; ok {
				f.buffers[b] = slices.Clone(t)
			} else {
				code = fpErrBadBuffer
			}
		} else if f.buffers[b] == nil {
			code = fpErrBadBuffer
		} else {
			f.library[slot] = slices.Clone(f.buffers[b])
		}
		f.mu.Unlock()
		f.reply(ctx, []byte{code})
	case fpDeleteChar:
		if short(4) {
			return
		}
		slot := int(binary.BigEndian.Uint16(p[0:2]))
		n := int(binary.BigEndian.Uint16(p[2:4]))
		if n == 0 || slot+n > f.cfg.Capacity {
			f.reply(ctx, []byte{fpErrDelete})
			return
		}
		f.mu.Lock()
		for s := slot; s < slot+n; s++ {
			delete(f.library, s)
		}
		f.mu.Unlock()
		f.reply(ctx, []byte{fpOK})
	case fpEmpty:
		f.mu.Lock()
		clear(f.library)
		f.mu.Unlock()
		f.reply(ctx, []byte{fpOK})
	default:
		f.reply(ctx, []byte{fpErrBadCommand})
	}
}

// fpBuffer maps a buffer id to CharBuffer1 or 2, as the ZFM-20 does: any
// id but 1 means buffer 2.
func fpBuffer(id byte) int {
	if id == 1 {
		return 1
	}
	return 2
}

// receiveData takes one data packet of a DownChar. Every packet but the
// last must carry exactly PacketSize bytes and the whole must be
// TemplateSize bytes, or the buffer ends up invalid and a later Store is
// refused with fpErrBadBuffer, as a real module's garbled buffer would be.
func (f *Fingerprint) receiveData(pid byte, c []byte) {
	d := f.down
	if d == nil {
		return // no download in progress: a module ignores stray data
	}
	if (pid == fpPIDData && len(c) != f.cfg.PacketSize) || len(c) > f.cfg.PacketSize || len(d.data)+len(c) > fpMaxTemplate {
		d.bad = true
	}
	if !d.bad {
		d.data = append(d.data, c...)
	}
	if pid != fpPIDEnd {
		return
	}
	f.down = nil
	if d.bad || len(d.data) != f.cfg.TemplateSize {
		f.buffers[d.buf] = nil
		return
	}
	f.buffers[d.buf] = d.data
}
