package face_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/face"
	"termagent/hal/haltest"
	"termagent/hal/internal/porttest"
	"termagent/hal/sim"
)

// hang is the deadline that catches a hung call; it asserts no speed.
const hang = 30 * time.Second

type rig struct {
	dev  *sim.Face
	plug *sim.Plug
	m    *face.FM22x
}

// setup runs the real driver against the simulator over a pseudo-terminal.
func setup(t *testing.T, sc sim.FaceConfig, cfg face.Config) rig {
	t.Helper()
	dev, err := sim.NewFace(sc)
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "face"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	cfg.Port = plug.Path()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = time.Second
	}
	if cfg.VerifySeconds == 0 {
		cfg.VerifySeconds = 1
	}
	if cfg.PhotoEnrollMsgID == 0 {
		cfg.PhotoEnrollMsgID = face.MsgEnrollWithPhoto
	}
	m, err := face.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Probe(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return rig{dev, plug, m}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// photo returns a fake JPEG of n bytes (SOI marker, then noise).
func photo(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	return b
}

type result struct {
	f   hal.Face
	err error
}

// recognize starts Recognize and waits until the module has received at
// least `after` more VERIFY commands.
func recognize(t *testing.T, r rig, ctx context.Context, after int) <-chan result {
	t.Helper()
	n := r.dev.Verifies()
	ch := make(chan result, 1)
	go func() {
		f, err := r.m.Recognize(ctx)
		ch <- result{f, err}
	}()
	haltest.Eventually(t, "the driver to send VERIFY", func() bool { return r.dev.Verifies() >= n+after })
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hang):
		t.Fatal("Recognize hung")
		return result{}
	}
}

func TestEnrollListDeleteClear(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{})
	ctx := testCtx(t)
	p1, p2 := photo(1, 3000), photo(2, 246*4) // the second ends on a chunk boundary
	id1, err := r.m.Enroll(ctx, "alice", p1)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := r.m.Enroll(ctx, "bob", p2)
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 || id1 < 1 || id2 < 1 {
		t.Fatalf("ids %d and %d", id1, id2)
	}
	for id, p := range map[int][]byte{id1: p1, id2: p2} {
		if h, ok := r.dev.PhotoHash(id); !ok || h != sha256.Sum256(p) {
			t.Fatalf("user %d: the module did not receive the photo intact", id)
		}
	}
	_, err = r.m.Enroll(ctx, "alice again", p1)
	var re *face.ResultError
	if !errors.Is(err, hal.ErrRejected) || !errors.As(err, &re) || re.Result != face.ResultFaceEnrolled {
		t.Fatalf("duplicate photo: %v, want the module's 0x0A as hal.ErrRejected", err)
	}
	users, err := r.m.Users(ctx)
	if want := []int{min(id1, id2), max(id1, id2)}; err != nil || !slices.Equal(users, want) {
		t.Fatalf("Users = %v, %v; want %v", users, err, want)
	}
	if err := r.m.Delete(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Delete(ctx, id1); err != nil {
		t.Fatalf("deleting an unknown user: %v", err)
	}
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{id2}) {
		t.Fatalf("after Delete, Users = %v, %v", users, err)
	}
	if err := r.m.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if users, err := r.m.Users(ctx); err != nil || len(users) != 0 {
		t.Fatalf("after Clear, Users = %v, %v", users, err)
	}
}

func TestEnrollUnsupported(t *testing.T) {
	ctx := testCtx(t)
	noPhoto, err := face.New(nopPort{}, face.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer noPhoto.Close()
	if _, err := noPhoto.Enroll(ctx, "x", photo(1, 100)); !errors.Is(err, hal.ErrUnsupported) {
		t.Fatalf("no photo message configured: %v, want hal.ErrUnsupported", err)
	}
	// A module without the message answers "unknown".
	r := setup(t, sim.FaceConfig{NoPhotoEnroll: true}, face.Config{})
	if _, err := r.m.Enroll(ctx, "x", photo(1, 100)); !errors.Is(err, hal.ErrUnsupported) {
		t.Fatalf("module without photo enrolment: %v, want hal.ErrUnsupported", err)
	}
	// Another firmware's id works when both sides agree.
	r = setup(t, sim.FaceConfig{PhotoEnrollMsgID: 0x1E}, face.Config{PhotoEnrollMsgID: 0x1E, PhotoChunk: 100})
	if id, err := r.m.Enroll(ctx, "x", photo(3, 1000)); err != nil || id != 1 {
		t.Fatalf("enrol through 0x1E: %d, %v", id, err)
	}
}

// nopPort is a port that never answers; Close wakes its Read.
type nopPort struct{}

func (nopPort) Read([]byte) (int, error)    { return 0, hal.ErrClosed }
func (nopPort) Write(b []byte) (int, error) { return len(b), nil }
func (nopPort) Close() error                { return nil }

func TestEnrollRefused(t *testing.T) {
	r := setup(t, sim.FaceConfig{MaxUsers: 1, MinPhoto: 500, MaxPhoto: 5000}, face.Config{})
	ctx := testCtx(t)
	for _, c := range []struct {
		name  string
		photo []byte
		want  error
	}{
		{"too small", photo(1, 400), hal.ErrRejected},
		{"too large", photo(1, 6000), hal.ErrRejected},
		{"not a JPEG", make([]byte, 1000), hal.ErrRejected},
	} {
		if _, err := r.m.Enroll(ctx, "x", c.photo); !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := r.m.Enroll(ctx, "x", photo(1, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Enroll(ctx, "y", photo(2, 1000)); !errors.Is(err, hal.ErrFull) {
		t.Fatalf("full module: %v, want hal.ErrFull", err)
	}
}

func TestRecognizeUserAndStranger(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 5})
	ctx := testCtx(t)
	alice, err := r.dev.AddUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := r.m.Enroll(ctx, "bob", photo(7, 2000))
	if err != nil {
		t.Fatal(err)
	}
	ch := recognize(t, r, ctx, 1)
	if err := r.dev.ShowFace(bob); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || !got.f.Recognised || got.f.UserID != bob || got.f.At.IsZero() {
		t.Fatalf("Recognize = %+v, %v; want user %d", got.f, got.err, bob)
	}
	ch = recognize(t, r, ctx, 1)
	if err := r.dev.ShowStranger(); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.Recognised {
		t.Fatalf("stranger: %+v, %v", got.f, got.err)
	}
	if err := r.m.Delete(ctx, alice); err != nil {
		t.Fatal(err)
	}
	ch = recognize(t, r, ctx, 1)
	if err := r.dev.ShowFace(alice); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.Recognised {
		t.Fatalf("deleted user's face: %+v, %v; want a stranger", got.f, got.err)
	}
}

// A VERIFY that times out on the module is followed by the next; Delete
// goes through between two of them.
func TestRecognizeLoopsAndInterleaves(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 1})
	ctx := testCtx(t)
	id, err := r.dev.AddUser("carol")
	if err != nil {
		t.Fatal(err)
	}
	ch := recognize(t, r, ctx, 2) // two VERIFYs: the first timed out
	if _, err := r.m.Users(ctx); err != nil {
		t.Fatalf("Users during Recognize: %v", err)
	}
	select {
	case res := <-ch:
		t.Fatalf("Recognize returned %+v, %v with no face", res.f, res.err)
	default:
	}
	if err := r.dev.ShowFace(id); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.UserID != id {
		t.Fatalf("Recognize = %+v, %v", got.f, got.err)
	}
}

// A module reset (NOTE READY) during VERIFY and stray READY notes while
// idle do not break the driver.
func TestModuleReset(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 10})
	ctx := testCtx(t)
	id, err := r.dev.AddUser("dave")
	if err != nil {
		t.Fatal(err)
	}
	ch := recognize(t, r, ctx, 1)
	r.dev.Reset()
	haltest.Eventually(t, "VERIFY after the reset", func() bool { return r.dev.Verifies() >= 2 })
	if err := r.dev.ShowFace(id); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.UserID != id {
		t.Fatalf("after reset: %+v, %v", got.f, got.err)
	}
	r.dev.Reset() // idle: a stray READY
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{id}) {
		t.Fatalf("Users after idle reset = %v, %v", users, err)
	}
}

// A reset in the middle of a photo enrolment fails that enrolment with a
// fault (not a refusal of the photo), and the next one goes through.
func TestResetDuringEnroll(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{PhotoChunk: 64})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Delay: 20 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		_, err := r.m.Enroll(ctx, "gina", photo(5, 4000)) // 63 packets
		errc <- err
	}()
	haltest.Eventually(t, "the enrolment to be under way", func() bool { return r.dev.PhotoPackets() >= 3 })
	r.dev.Reset()
	select {
	case err := <-errc:
		if !errors.Is(err, face.ErrReset) || !errors.Is(err, hal.ErrFault) {
			t.Fatalf("enrolment cut by a reset: %v, want face.ErrReset and hal.ErrFault", err)
		}
	case <-time.After(hang):
		t.Fatal("Enroll hung")
	}
	if users := r.dev.Users(); len(users) != 0 {
		t.Fatalf("the module enrolled %v from a cut transfer", users)
	}
	r.dev.SetFaults(sim.ReplyFaults{})
	id, err := r.m.Enroll(ctx, "gina", photo(6, 4000))
	if err != nil {
		t.Fatal(err)
	}
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{id}) {
		t.Fatalf("Users = %v, %v; want [%d]", users, err, id)
	}
}

func TestStrayBytesAndPartialFrames(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 5})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Stray: []byte{0x55, 0xEF, 0x00, 0xEF, 0xAA, 0x00, 0x10}, Split: true})
	id, err := r.m.Enroll(ctx, "erin", photo(9, 1500))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Noise(500); err != nil {
		t.Fatal(err)
	}
	ch := recognize(t, r, ctx, 1)
	if err := r.dev.ShowFace(id); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.UserID != id {
		t.Fatalf("Recognize = %+v, %v", got.f, got.err)
	}
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{id}) {
		t.Fatalf("Users = %v, %v", users, err)
	}
}

func TestBadParityThenRecovers(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{CommandTimeout: 500 * time.Millisecond})
	ctx := testCtx(t)
	// Let start-up settle first: the module's power-on NOTE READY can
	// arrive during the first GET_STATUS, which is then sent again, and
	// the late reply to one copy would take the injected fault. The
	// module answers in order, so once a later command (Users, after the
	// GET_STATUS probe) has been answered, every earlier reply is written.
	if _, err := r.m.Users(ctx); err != nil {
		t.Fatal(err)
	}
	r.dev.SetFaults(sim.ReplyFaults{Corrupt: 1})
	if _, err := r.m.Users(ctx); !errors.Is(err, face.ErrParity) || !errors.Is(err, hal.ErrFault) {
		t.Fatalf("corrupt reply: %v, want ErrParity and hal.ErrFault", err)
	}
	if _, err := r.m.Users(ctx); err != nil {
		t.Fatalf("after the corrupt reply: %v", err)
	}
}

func TestSilenceTimesOut(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{CommandTimeout: 300 * time.Millisecond, DeleteTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Silent: true})
	if err := r.m.Clear(ctx); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("silent module: %v, want hal.ErrTimeout", err)
	}
	if _, err := r.m.Recognize(ctx); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("Recognize on a silent module: %v, want hal.ErrTimeout", err)
	}
	r.dev.SetFaults(sim.ReplyFaults{})
	if err := r.m.Clear(ctx); err != nil {
		t.Fatalf("after silence: %v", err)
	}
}

func TestUnplugReplug(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{CommandTimeout: 500 * time.Millisecond})
	ctx := testCtx(t)
	id, err := r.m.Enroll(ctx, "frank", photo(4, 800))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Users(ctx); !errors.Is(err, hal.ErrFault) && !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("unplugged: %v, want a fault or timeout", err)
	}
	if err := r.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	var users []int
	haltest.Eventually(t, "the driver to reach the replugged module", func() bool {
		var err error
		users, err = r.m.Users(ctx)
		return err == nil
	})
	if !slices.Equal(users, []int{id}) {
		t.Fatalf("after replug Users = %v, want [%d]", users, id)
	}
}

func TestCloseUnblocksRecognize(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 255, CommandTimeout: time.Hour})
	ctx := testCtx(t)
	ch := recognize(t, r, ctx, 1)
	if err := r.m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); !errors.Is(got.err, hal.ErrClosed) {
		t.Fatalf("Recognize after Close: %v, want hal.ErrClosed", got.err)
	}
	if err := r.m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.m.Users(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("Users after Close: %v", err)
	}
}

// A module missing at Open is in the state of one lost later (the one open
// path): Open succeeds, Health names the port, and once the module appears
// the driver checks it and works.
func TestOpenMissingPort(t *testing.T) {
	dev, err := sim.NewFace(sim.FaceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.AddUser("alice"); err != nil {
		t.Fatal(err)
	}
	porttest.MissingAtOpen(t, func(path string) (*face.FM22x, error) {
		return face.Open(face.Config{Port: path, VerifySeconds: 1})
	}, dev, func(ctx context.Context, m *face.FM22x) error {
		users, err := m.Users(ctx)
		if err == nil && len(users) != 1 {
			err = fmt.Errorf("users %v, want alice's one id", users)
		}
		return err
	})
}

// A Recognize cancelled while the module is busy with VERIFY (which it
// answers only after its own timeout, here far beyond the hang deadline)
// must not leave the module busy or its late reply on the line: the next
// commands work at once, and a later Recognize sees the next face shown.
func TestCancelRecognizeMidVerify(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 255})
	ctx := testCtx(t)
	alice, err := r.dev.AddUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := r.m.Enroll(ctx, "bob", photo(11, 1200))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		rctx, cancel := context.WithCancel(ctx)
		ch := recognize(t, r, rctx, 1)
		cancel()
		if got := await(t, ch); !errors.Is(got.err, context.Canceled) {
			t.Fatalf("round %d: cancelled Recognize = %+v, %v; want context.Canceled", round, got.f, got.err)
		}
		if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{alice, bob}) {
			t.Fatalf("round %d: Users after the cancel = %v, %v; want [%d %d]", round, users, err, alice, bob)
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	ch := recognize(t, r, rctx, 1)
	cancel()
	await(t, ch)
	if err := r.m.Clear(ctx); err != nil {
		t.Fatalf("Clear after a cancelled Recognize: %v", err)
	}
	if users := r.dev.Users(); len(users) != 0 {
		t.Fatalf("module still holds %v after Clear", users)
	}

	rctx, cancel = context.WithCancel(ctx)
	ch = recognize(t, r, rctx, 1)
	cancel()
	await(t, ch)
	carol, err := r.m.Enroll(ctx, "carol", photo(12, 900))
	if err != nil {
		t.Fatalf("Enroll after a cancelled Recognize: %v", err)
	}
	dave, err := r.dev.AddUser("dave")
	if err != nil {
		t.Fatal(err)
	}

	rctx, cancel = context.WithCancel(ctx)
	ch = recognize(t, r, rctx, 1)
	cancel()
	await(t, ch)
	if err := r.m.Delete(ctx, dave); err != nil {
		t.Fatalf("Delete after a cancelled Recognize: %v", err)
	}
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{carol}) {
		t.Fatalf("Users = %v, %v; want [%d]", users, err, carol)
	}

	// The aborted VERIFYs must not be waiting for the camera any more: the
	// face shown now goes to the new Recognize.
	ch = recognize(t, r, ctx, 1)
	if err := r.dev.ShowFace(carol); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || !got.f.Recognised || got.f.UserID != carol {
		t.Fatalf("Recognize after the cancels = %+v, %v; want user %d", got.f, got.err, carol)
	}
	if n := r.dev.FacesWaiting(); n != 0 {
		t.Fatalf("%d faces left unseen", n)
	}
}

// A module that leaves the RESET abort unanswered (both the ABORTED reply
// to VERIFY and the reply to RESET are lost) costs the next command one
// CommandTimeout, then the GET_STATUS probe finds it idle.
func TestCancelRecognizeResetUnanswered(t *testing.T) {
	r := setup(t, sim.FaceConfig{}, face.Config{VerifySeconds: 255, CommandTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	id, err := r.dev.AddUser("erin")
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	ch := recognize(t, r, rctx, 1)
	r.dev.SetFaults(sim.ReplyFaults{Drop: 2})
	cancel()
	if got := await(t, ch); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("cancelled Recognize: %v", got.err)
	}
	if users, err := r.m.Users(ctx); err != nil || !slices.Equal(users, []int{id}) {
		t.Fatalf("Users after an unanswered RESET = %v, %v; want [%d]", users, err, id)
	}
	ch = recognize(t, r, ctx, 1)
	if err := r.dev.ShowFace(id); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.UserID != id {
		t.Fatalf("Recognize = %+v, %v; want user %d", got.f, got.err, id)
	}
}
