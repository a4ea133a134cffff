package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// The face simulator speaks the module side of the "EF AA" protocol of the
// HLK-FM225/FM223 family (see hal/face's package doc for its sources). Like the
// fingerprint simulator it has its own codec, independent of hal/face.

// EF AA message ids, notes and results the simulator uses.
const (
	faceMsgReply     = 0x00
	faceMsgNote      = 0x01
	faceMsgReset     = 0x10
	faceMsgStatus    = 0x11
	faceMsgVerify    = 0x12
	faceMsgDelUser   = 0x20
	faceMsgDelAll    = 0x21
	faceMsgUserInfo  = 0x22
	faceMsgAllUserID = 0x24
	faceMsgVersion   = 0x30

	faceNoteReady     = 0x00
	faceNoteFaceState = 0x01

	faceOK           = 0x00
	faceRejected     = 0x01
	faceAborted      = 0x02
	faceUnknown      = 0x05
	faceInvalidParam = 0x06
	faceUnknownUser  = 0x08
	faceMaxUser      = 0x09
	faceEnrolled     = 0x0A
	faceTimeout      = 0x0D
	facePhotoLarge   = 0x18
	facePhotoSmall   = 0x19

	faceMaxData     = 4096 // bytes of data per frame
	faceNameLen     = 32
	faceStranger    = -1 // a shown face that belongs to nobody
	facePendingShow = 16
	faceVersion     = "termsim-fm22x 1.0"
)

// FaceConfig configures a simulated face module. Zero values mean the
// documented defaults.
type FaceConfig struct {
	// MaxUsers is how many users the module holds, 1..255; ids run from 1
	// to MaxUsers. Zero means 100.
	MaxUsers int
	// PhotoEnrollMsgID is the message id of enrolment from a JPEG; zero
	// means 0xF7. NoPhotoEnroll makes a module without it, which answers
	// that id, like any unknown one, with result 0x05.
	PhotoEnrollMsgID byte
	NoPhotoEnroll    bool
	// MinPhoto and MaxPhoto bound an enrolment photo in bytes; smaller or
	// larger photos get results 0x19 / 0x18. Zero means 64 and 256 KiB.
	MinPhoto int
	MaxPhoto int
}

type faceUser struct {
	name  string
	photo [32]byte // SHA-256 of the enrolment photo; zero for AddUser
}

// Face is a simulated EF AA face module: it keeps users (id → name and the
// hash of the photo they were enrolled from) across Serve calls, enrols
// from a JPEG sent in chunks (see hal/face for the message layout), and
// recognises the faces it is shown.
//
// Control methods for tests and cmd/termsim, safe for concurrent use with
// Serve:
//
//   - ShowFace(id) shows the face of user id (a stranger's if id is not
//     enrolled) and ShowStranger shows an unknown face. Each shown face is
//     seen by exactly one VERIFY, pending or next; up to 16 queue.
//   - Reset reboots the module: a VERIFY in progress is dropped without a
//     reply and NOTE READY is sent, as after power-on (Serve also sends
//     READY when it starts: a replug is a power cycle).
//   - AddUser enrols a user as if at the device; Users, User and
//     PhotoHash read the user table.
//   - SetFaults injects reply faults; Noise and WriteRaw write line noise.
//   - Verifies counts VERIFY commands and PhotoPackets photo-enrolment
//     packets, so tests can wait for a driver.
type Face struct {
	cfg  FaceConfig
	wire wire

	mu       sync.Mutex
	users    map[int]faceUser
	shown    []int         // queued faces: user ids or faceStranger
	showCh   chan struct{} // signalled when a face is queued
	resetCh  chan struct{} // signalled by Reset
	faults   ReplyFaults
	verifies int
	packets  int // photo-enrolment packets received

	serving sync.Mutex
	photo   *facePhoto // enrolment in progress; Serve only
}

type facePhoto struct {
	size int
	data []byte
	next int // next expected sequence number
}

var _ Device = (*Face)(nil)

// NewFace returns a simulated face module with no users; it fails on an
// out-of-range Config field.
func NewFace(cfg FaceConfig) (*Face, error) {
	if cfg.MaxUsers == 0 {
		cfg.MaxUsers = 100
	}
	if cfg.PhotoEnrollMsgID == 0 {
		cfg.PhotoEnrollMsgID = 0xF7
	}
	if cfg.MinPhoto == 0 {
		cfg.MinPhoto = 64
	}
	if cfg.MaxPhoto == 0 {
		cfg.MaxPhoto = 256 << 10
	}
	switch {
	case cfg.MaxUsers < 1 || cfg.MaxUsers > 255:
		return nil, fmt.Errorf("sim: face: max users %d out of range 1..255", cfg.MaxUsers)
	case cfg.MinPhoto < 1 || cfg.MaxPhoto < cfg.MinPhoto || cfg.MaxPhoto > 16<<20:
		return nil, fmt.Errorf("sim: face: photo bounds %d..%d bytes", cfg.MinPhoto, cfg.MaxPhoto)
	}
	switch cfg.PhotoEnrollMsgID {
	case faceMsgReply, faceMsgNote, 0x02, faceMsgReset, faceMsgStatus, faceMsgVerify, faceMsgDelUser,
		faceMsgDelAll, faceMsgUserInfo, faceMsgAllUserID, faceMsgVersion:
		return nil, fmt.Errorf("sim: face: photo enrol message id 0x%02X is taken", cfg.PhotoEnrollMsgID)
	}
	return &Face{
		cfg:     cfg,
		users:   make(map[int]faceUser),
		showCh:  make(chan struct{}, 1),
		resetCh: make(chan struct{}, 1),
	}, nil
}

// ShowFace shows the face of user id to the camera. An id that is not
// enrolled is a stranger's face. It fails when 16 faces already wait.
func (s *Face) ShowFace(id int) error {
	if id < 1 || id > 0xFFFF {
		return fmt.Errorf("sim: face: show user %d: id out of range 1..65535", id)
	}
	return s.show(id)
}

// ShowStranger shows a face that belongs to no user.
func (s *Face) ShowStranger() error { return s.show(faceStranger) }

func (s *Face) show(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.shown) >= facePendingShow {
		return fmt.Errorf("sim: face: %d faces already wait for the camera", len(s.shown))
	}
	s.shown = append(s.shown, id)
	faceSignal(s.showCh)
	return nil
}

func faceSignal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// FacesWaiting returns how many shown faces no VERIFY has seen yet.
func (s *Face) FacesWaiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shown)
}

// Reset reboots the module (see the type's documentation). While no Serve
// runs it does nothing: the next Serve starts with READY anyway.
func (s *Face) Reset() {
	faceSignal(s.resetCh)
}

// AddUser enrols a user as if at the device and returns the id assigned
// (the lowest free one); it fails when the module is full.
func (s *Face) AddUser(name string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.freeIDLocked()
	if id == 0 {
		return 0, fmt.Errorf("sim: face: add user: all %d ids are taken", s.cfg.MaxUsers)
	}
	s.users[id] = faceUser{name: faceTruncateName(name)}
	return id, nil
}

func faceTruncateName(name string) string {
	if len(name) > faceNameLen {
		return name[:faceNameLen]
	}
	return name
}

func (s *Face) freeIDLocked() int {
	for id := 1; id <= s.cfg.MaxUsers; id++ {
		if _, ok := s.users[id]; !ok {
			return id
		}
	}
	return 0
}

// Users returns the enrolled ids in ascending order.
func (s *Face) Users() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// User returns the name of user id and whether the user exists.
func (s *Face) User(id int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u.name, ok
}

// PhotoHash returns the SHA-256 of the photo user id was enrolled from;
// ok is false for an unknown user or one added with AddUser.
func (s *Face) PhotoHash(id int) (sum [32]byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u.photo, ok && u.photo != [32]byte{}
}

// Verifies returns how many VERIFY commands the module has received.
func (s *Face) Verifies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verifies
}

// PhotoPackets returns how many photo-enrolment packets the module has
// received, so tests can act in the middle of an enrolment.
func (s *Face) PhotoPackets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.packets
}

// SetFaults replaces the reply faults (they apply to replies and notes the
// module sends in answer to commands); the zero value clears them.
func (s *Face) SetFaults(rf ReplyFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rf.Stray = slices.Clone(rf.Stray)
	s.faults = rf
}

// Noise writes n random bytes (at most 4096) to the host. It returns
// ErrUnplugged while no Serve runs.
func (s *Face) Noise(n int) error { return rfNoise(&s.wire, n) }

// WriteRaw writes b to the host as is. It returns ErrUnplugged while no
// Serve runs.
func (s *Face) WriteRaw(b []byte) error {
	if err := s.wire.write(b); err != nil {
		return fmt.Errorf("sim: face: %w", err)
	}
	return nil
}

// faceEncode returns the wire bytes of one frame.
func faceEncode(msg byte, data []byte) []byte {
	b := []byte{0xEF, 0xAA, msg}
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	b = append(b, data...)
	return append(b, faceParity(msg, data))
}

func faceParity(msg byte, data []byte) byte {
	p := msg ^ byte(len(data)>>8) ^ byte(len(data))
	for _, c := range data {
		p ^= c
	}
	return p
}

// faceParse finds one frame in b: used is 0 when more bytes are needed;
// otherwise b[:used] is consumed and ok says whether it held a valid frame.
func faceParse(b []byte) (msg byte, data []byte, used int, ok bool) {
	i := bytes.Index(b, []byte{0xEF, 0xAA})
	switch {
	case i < 0:
		if n := len(b); n > 0 && b[n-1] == 0xEF {
			return 0, nil, n - 1, false
		}
		return 0, nil, len(b), false
	case i > 0:
		return 0, nil, i, false
	case len(b) < 5:
		return 0, nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(b[3:5]))
	if n > faceMaxData {
		return 0, nil, 1, false
	}
	if len(b) < 6+n {
		return 0, nil, 0, false
	}
	msg, data = b[2], b[5:5+n]
	if b[5+n] != faceParity(msg, data) {
		return 0, nil, 1, false
	}
	return msg, slices.Clone(data), 6 + n, true
}

type faceFrame struct {
	msg  byte
	data []byte
}

// Serve speaks the module side on port until ctx is done (ctx.Err()) or
// port fails (the error). It starts with NOTE READY, as a module does
// after power-on. Frames with bad parity are ignored, as the module does.
func (s *Face) Serve(ctx context.Context, port io.ReadWriter) error {
	s.serving.Lock()
	defer s.serving.Unlock()
	defer s.wire.attach(port)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWake := wakeOnDone(ctx, port)
	defer stopWake()

	frames := make(chan faceFrame, 16)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readErr <- s.readFrames(ctx, port, frames)
	}()
	defer func() { cancel(); <-readerDone }()

	s.photo = nil
	select { // a Reset requested while unplugged is moot: this is a power-on
	case <-s.resetCh:
	default:
	}
	s.note(faceNoteReady)
	for {
		select {
		case f := <-frames:
			s.handle(ctx, f, frames)
		case <-s.resetCh:
			s.photo = nil
			s.note(faceNoteReady)
		case err := <-readErr:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("sim: face: read: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readFrames decodes frames from port into frames until a read fails.
func (s *Face) readFrames(ctx context.Context, port io.Reader, frames chan<- faceFrame) error {
	var in []byte
	buf := make([]byte, 1024)
	for {
		n, err := port.Read(buf)
		in = append(in, buf[:n]...)
		for {
			msg, data, used, ok := faceParse(in)
			if used == 0 {
				break
			}
			in = in[used:]
			if !ok {
				continue
			}
			select {
			case frames <- faceFrame{msg, data}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(in) > 2*(faceMaxData+6) {
			in = in[len(in)-(faceMaxData+6):]
		}
		if err != nil {
			return err
		}
	}
}

// note sends a NOTE frame unprompted (no faults: they concern replies).
func (s *Face) note(id byte, payload ...byte) {
	_ = s.wire.write(faceEncode(faceMsgNote, append([]byte{id}, payload...)))
}

// reply sends a REPLY to cmd, with the reply faults.
func (s *Face) reply(ctx context.Context, cmd, result byte, payload ...byte) {
	s.send(ctx, faceEncode(faceMsgReply, append([]byte{cmd, result}, payload...)))
}

func (s *Face) send(ctx context.Context, frame []byte) {
	s.mu.Lock()
	rf := s.faults
	if s.faults.Drop > 0 {
		s.faults.Drop--
	}
	if s.faults.Corrupt > 0 {
		s.faults.Corrupt--
	}
	s.mu.Unlock()
	rfSend(ctx, &s.wire, frame, rf)
}

func (s *Face) handle(ctx context.Context, f faceFrame, frames <-chan faceFrame) {
	d := f.data
	if f.msg != s.cfg.PhotoEnrollMsgID || s.cfg.NoPhotoEnroll {
		s.photo = nil // any other command ends a photo enrolment
	}
	switch {
	case f.msg == faceMsgReset:
		s.reply(ctx, f.msg, faceOK)
	case f.msg == faceMsgStatus:
		s.reply(ctx, f.msg, faceOK, 0) // standby
	case f.msg == faceMsgVersion:
		s.reply(ctx, f.msg, faceOK, []byte(faceVersion)...)
	case f.msg == faceMsgVerify:
		s.verify(ctx, d, frames)
	case f.msg == faceMsgDelUser:
		if len(d) < 2 {
			s.reply(ctx, f.msg, faceInvalidParam)
			return
		}
		id := int(binary.BigEndian.Uint16(d))
		s.mu.Lock()
		_, ok := s.users[id]
		delete(s.users, id)
		s.mu.Unlock()
		if !ok {
			s.reply(ctx, f.msg, faceUnknownUser)
			return
		}
		s.reply(ctx, f.msg, faceOK)
	case f.msg == faceMsgDelAll:
		s.mu.Lock()
		clear(s.users)
		s.mu.Unlock()
		s.reply(ctx, f.msg, faceOK)
	case f.msg == faceMsgAllUserID:
		ids := s.Users()
		p := []byte{byte(len(ids))}
		for _, id := range ids {
			p = binary.BigEndian.AppendUint16(p, uint16(id))
		}
		s.reply(ctx, f.msg, faceOK, p...)
	case f.msg == faceMsgUserInfo:
		if len(d) < 2 {
			s.reply(ctx, f.msg, faceInvalidParam)
			return
		}
		id := int(binary.BigEndian.Uint16(d))
		name, ok := s.User(id)
		if !ok {
			s.reply(ctx, f.msg, faceUnknownUser)
			return
		}
		s.reply(ctx, f.msg, faceOK, append(faceUserInfo(id, name), 0)...)
	case f.msg == s.cfg.PhotoEnrollMsgID && !s.cfg.NoPhotoEnroll:
		s.enrollPhoto(ctx, f.msg, d)
	default:
		s.reply(ctx, f.msg, faceUnknown)
	}
}

// faceUserInfo is user_id(2) and name(32, zero padded).
func faceUserInfo(id int, name string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(id))
	var n [faceNameLen]byte
	copy(n[:], name)
	return append(p, n[:]...)
}

// verify waits up to the requested seconds for a shown face. A RESET
// frame aborts it (reply ABORTED); a module Reset drops it silently.
func (s *Face) verify(ctx context.Context, d []byte, frames <-chan faceFrame) {
	if len(d) < 2 {
		s.reply(ctx, faceMsgVerify, faceInvalidParam)
		return
	}
	s.mu.Lock()
	s.verifies++
	s.mu.Unlock()
	secs := int(d[1])
	if secs == 0 {
		secs = 10
	}
	t := time.NewTimer(time.Duration(secs) * time.Second)
	defer t.Stop()
	for {
		s.mu.Lock()
		id, ok := 0, len(s.shown) > 0
		if ok {
			id = s.shown[0]
			s.shown = s.shown[1:]
		}
		name, enrolled := "", false
		if u, found := s.users[id]; ok && found {
			name, enrolled = u.name, true
		}
		s.mu.Unlock()
		if ok {
			// FACE_STATE: state 0 (normal) and a box; int16 little-endian.
			state := make([]byte, 16)
			binary.LittleEndian.PutUint16(state[2:], 100)
			binary.LittleEndian.PutUint16(state[4:], 80)
			s.note(faceNoteFaceState, state...)
			if !enrolled {
				s.reply(ctx, faceMsgVerify, faceRejected)
				return
			}
			s.reply(ctx, faceMsgVerify, faceOK, append(faceUserInfo(id, name), 0, 0)...)
			return
		}
		select {
		case <-s.showCh:
		case f := <-frames:
			if f.msg == faceMsgReset {
				s.reply(ctx, faceMsgVerify, faceAborted)
				s.reply(ctx, faceMsgReset, faceOK)
				return
			}
			// Busy: a real module does not answer while verifying.
		case <-s.resetCh:
			s.photo = nil
			s.note(faceNoteReady)
			return
		case <-t.C:
			s.reply(ctx, faceMsgVerify, faceTimeout)
			return
		case <-ctx.Done():
			return
		}
	}
}

// enrollPhoto takes one packet of a photo enrolment:
//
//	seq 0:  seq(2)=0, photo size(4, BE), bio type(1) → reply seq(2)
//	seq n:  seq(2)=n, up to 4094 JPEG bytes          → reply seq(2)
//	last:   the packet that completes the size       → reply seq(2), user id(2)
//
// Any error ends the enrolment; the host starts again from seq 0.
func (s *Face) enrollPhoto(ctx context.Context, msg byte, d []byte) {
	s.mu.Lock()
	s.packets++
	s.mu.Unlock()
	if len(d) < 2 {
		s.photo = nil
		s.reply(ctx, msg, faceInvalidParam)
		return
	}
	seq := binary.BigEndian.Uint16(d)
	fail := func(result byte) {
		s.photo = nil
		s.reply(ctx, msg, result, d[:2]...)
	}
	if seq == 0 {
		if len(d) < 7 {
			fail(faceInvalidParam)
			return
		}
		size := int(binary.BigEndian.Uint32(d[2:6]))
		s.mu.Lock()
		full := s.freeIDLocked() == 0
		s.mu.Unlock()
		switch {
		case size < s.cfg.MinPhoto:
			fail(facePhotoSmall)
		case size > s.cfg.MaxPhoto:
			fail(facePhotoLarge)
		case full:
			fail(faceMaxUser)
		default:
			s.photo = &facePhoto{size: size, next: 1}
			s.reply(ctx, msg, faceOK, d[:2]...)
		}
		return
	}
	p := s.photo
	if p == nil || int(seq) != p.next || len(p.data)+len(d)-2 > p.size {
		fail(faceInvalidParam)
		return
	}
	p.data = append(p.data, d[2:]...)
	p.next++
	if len(p.data) < p.size {
		s.reply(ctx, msg, faceOK, d[:2]...)
		return
	}
	s.photo = nil
	if !bytes.HasPrefix(p.data, []byte{0xFF, 0xD8, 0xFF}) {
		fail(faceInvalidParam) // not a JPEG
		return
	}
	sum := sha256.Sum256(p.data)
	s.mu.Lock()
	dup := false
	for _, u := range s.users {
		dup = dup || u.photo == sum
	}
	id := s.freeIDLocked()
	if !dup && id != 0 {
		s.users[id] = faceUser{photo: sum}
	}
	s.mu.Unlock()
	switch {
	case dup:
		fail(faceEnrolled)
	case id == 0:
		fail(faceMaxUser)
	default:
		s.reply(ctx, msg, faceOK, binary.BigEndian.AppendUint16(slices.Clone(d[:2]), uint16(id))...)
	}
}
