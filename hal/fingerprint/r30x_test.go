package fingerprint_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
	"termagent/hal/fingerprint"
	"termagent/hal/haltest"
	"termagent/hal/internal/modlinktest"
	"termagent/hal/internal/porttest"
	"termagent/hal/sim"
)

// hang is the deadline that catches a hung call; it asserts no speed.
const hang = 30 * time.Second

type rig struct {
	dev  *sim.Fingerprint
	plug *sim.Plug
	m    *fingerprint.R30x
}

// setup runs the real driver against the simulator over a pseudo-terminal.
func setup(t *testing.T, sc sim.FingerprintConfig, cfg fingerprint.Config) rig {
	t.Helper()
	dev, err := sim.NewFingerprint(sc)
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "fingerprint"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	cfg.Port = plug.Path()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	m, err := fingerprint.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	return rig{dev, plug, m}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

type result struct {
	f   hal.Finger
	err error
}

// identify starts Identify and waits until the driver has polled the
// module at least once more, so a finger placed afterwards meets a poll.
func identify(t *testing.T, r rig, ctx context.Context) <-chan result {
	t.Helper()
	polls := r.dev.Polls()
	ch := make(chan result, 1)
	go func() {
		f, err := r.m.Identify(ctx)
		ch <- result{f, err}
	}()
	haltest.Eventually(t, "the driver to poll", func() bool { return r.dev.Polls() > polls })
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hang):
		t.Fatal("Identify hung")
		return result{}
	}
}

func TestStoreListDeleteClear(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{Capacity: 500}, fingerprint.Config{})
	ctx := testCtx(t)
	want := map[int][]byte{0: r.dev.Template(1), 5: r.dev.Template(2), 300: r.dev.Template(3), 499: r.dev.Template(4)}
	for slot, tpl := range want {
		if err := r.m.Store(ctx, slot, tpl); err != nil {
			t.Fatalf("Store %d: %v", slot, err)
		}
	}
	for slot, tpl := range want {
		got, ok := r.dev.Stored(slot)
		if !ok || !bytes.Equal(got, tpl) {
			t.Fatalf("module holds %d bytes at slot %d (ok=%v), want the %d stored", len(got), slot, ok, len(tpl))
		}
	}
	slots, err := r.m.Slots(ctx)
	if err != nil || !slices.Equal(slots, []int{0, 5, 300, 499}) {
		t.Fatalf("Slots = %v, %v; want [0 5 300 499]", slots, err)
	}
	if err := r.m.Delete(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Delete(ctx, 6); err != nil {
		t.Fatalf("deleting an empty slot: %v", err)
	}
	if slots, err := r.m.Slots(ctx); err != nil || !slices.Equal(slots, []int{0, 300, 499}) {
		t.Fatalf("after Delete, Slots = %v, %v", slots, err)
	}
	if err := r.m.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if slots, err := r.m.Slots(ctx); err != nil || len(slots) != 0 {
		t.Fatalf("after Clear, Slots = %v, %v", slots, err)
	}
	if c, err := r.m.Capacity(ctx); err != nil || c != 500 {
		t.Fatalf("Capacity = %d, %v; want the module's 500", c, err)
	}
}

// The driver chunks at the packet size ReadSysPara reports, including a
// short last chunk, and the module's template size is whatever it is.
func TestStoreChunking(t *testing.T) {
	for _, c := range []struct{ packet, template int }{{32, 768}, {64, 1536}, {256, 512}, {128, 500}} {
		r := setup(t, sim.FingerprintConfig{PacketSize: c.packet, TemplateSize: c.template}, fingerprint.Config{})
		tpl := r.dev.Template(9)
		if err := r.m.Store(testCtx(t), 3, tpl); err != nil {
			t.Fatalf("packet %d, template %d: %v", c.packet, c.template, err)
		}
		if got, _ := r.dev.Stored(3); !bytes.Equal(got, tpl) {
			t.Fatalf("packet %d, template %d: module stored %d bytes", c.packet, c.template, len(got))
		}
	}
}

func TestStoreRejected(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{Capacity: 10}, fingerprint.Config{})
	ctx := testCtx(t)
	err := r.m.Store(ctx, 1, make([]byte, 100)) // the module's templates are 512 bytes
	var ce *fingerprint.CodeError
	if !errors.Is(err, hal.ErrRejected) || !errors.As(err, &ce) || ce.Code != fingerprint.CodeBadTemplate {
		t.Fatalf("wrong-size template: %v, want a module refusal wrapping hal.ErrRejected", err)
	}
	if err := r.m.Store(ctx, 10, r.dev.Template(1)); !errors.Is(err, hal.ErrRejected) {
		t.Fatalf("slot beyond capacity: %v", err)
	}
	if err := r.m.Store(ctx, 1, nil); !errors.Is(err, hal.ErrRejected) {
		t.Fatalf("empty template: %v", err)
	}
	if slots := r.dev.Slots(); len(slots) != 0 {
		t.Fatalf("module stored %v after refusals", slots)
	}
	// The link is still in step after the refusals.
	if err := r.m.Store(ctx, 2, r.dev.Template(1)); err != nil {
		t.Fatal(err)
	}
}

func TestIdentifyMatchAndUnknown(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{})
	ctx := testCtx(t)
	if err := r.m.Store(ctx, 7, r.dev.Template(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.m.Store(ctx, 150, r.dev.Template(2)); err != nil {
		t.Fatal(err)
	}
	ch := identify(t, r, ctx)
	if err := r.dev.PlaceFinger(150); err != nil {
		t.Fatal(err)
	}
	got := await(t, ch)
	if got.err != nil || !got.f.Matched || got.f.Slot != 150 || got.f.Score <= 0 || got.f.At.IsZero() {
		t.Fatalf("Identify = %+v, %v; want slot 150 matched with a score", got.f, got.err)
	}
	ch = identify(t, r, ctx)
	if err := r.dev.PlaceUnknownFinger(); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || got.f.Matched {
		t.Fatalf("unknown finger: %+v, %v; want not matched", got.f, got.err)
	}
}

// Store and Delete go through while Identify waits for a finger.
func TestStoreDuringIdentify(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{})
	ctx := testCtx(t)
	ch := identify(t, r, ctx)
	if err := r.m.Store(ctx, 3, r.dev.Template(3)); err != nil {
		t.Fatalf("Store during Identify: %v", err)
	}
	if err := r.m.Delete(ctx, 4); err != nil {
		t.Fatalf("Delete during Identify: %v", err)
	}
	select {
	case res := <-ch:
		t.Fatalf("Identify returned %+v, %v with no finger", res.f, res.err)
	default:
	}
	if err := r.dev.PlaceFinger(3); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || !got.f.Matched || got.f.Slot != 3 {
		t.Fatalf("Identify = %+v, %v; want slot 3", got.f, got.err)
	}
}

// Stray bytes before every reply (0x55 as an R503 sends, a lone 0xEF) and
// replies split into two writes do not disturb the driver.
func TestStrayBytesAndPartialPackets(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Stray: []byte{0x55, 0xEF, 0x00, 0xEF}, Split: true})
	if err := r.m.Store(ctx, 1, r.dev.Template(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.dev.Noise(300); err != nil {
		t.Fatal(err)
	}
	ch := identify(t, r, ctx)
	if err := r.dev.PlaceFinger(1); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || !got.f.Matched || got.f.Slot != 1 {
		t.Fatalf("Identify = %+v, %v", got.f, got.err)
	}
	if slots, err := r.m.Slots(ctx); err != nil || !slices.Equal(slots, []int{1}) {
		t.Fatalf("Slots = %v, %v", slots, err)
	}
}

// A stray sync word announcing a long packet must not swallow the reply:
// the driver gives the false start up after ByteGap.
func TestFalsePacketStart(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{ByteGap: 50 * time.Millisecond})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Stray: []byte{0xEF, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01, 0x00}})
	if err := r.m.Store(ctx, 4, r.dev.Template(4)); err != nil {
		t.Fatal(err)
	}
	if slots, err := r.m.Slots(ctx); err != nil || !slices.Equal(slots, []int{4}) {
		t.Fatalf("Slots = %v, %v", slots, err)
	}
}

func TestBadChecksumThenRecovers(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{CommandTimeout: 500 * time.Millisecond})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Corrupt: 1})
	_, err := r.m.Slots(ctx)
	if !errors.Is(err, fingerprint.ErrChecksum) || !errors.Is(err, hal.ErrFault) {
		t.Fatalf("corrupt reply: %v, want ErrChecksum and hal.ErrFault", err)
	}
	if _, err := r.m.Slots(ctx); err != nil {
		t.Fatalf("after the corrupt reply: %v", err)
	}
}

func TestSilenceTimesOut(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{CommandTimeout: 300 * time.Millisecond, SlowTimeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	r.dev.SetFaults(sim.ReplyFaults{Silent: true})
	if err := r.m.Clear(ctx); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("silent module: %v, want hal.ErrTimeout", err)
	}
	if _, err := r.m.Identify(ctx); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("Identify on a silent module: %v, want hal.ErrTimeout", err)
	}
	r.dev.SetFaults(sim.ReplyFaults{})
	if err := r.m.Clear(ctx); err != nil {
		t.Fatalf("after silence: %v", err)
	}
	// One dropped reply costs one command, not the link.
	r.dev.SetFaults(sim.ReplyFaults{Drop: 1})
	if _, err := r.m.Slots(ctx); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("dropped reply: %v", err)
	}
	if _, err := r.m.Slots(ctx); err != nil {
		t.Fatalf("after a dropped reply: %v", err)
	}
}

// ACKs name no instruction: a late ACK to an earlier command that is
// still on the line when the next command is sent must not pass for the
// next one's. Here each probe command's own ACK follows a stale one of
// another shape; the driver must skip the stale ones.
func TestStaleAckIsNotMisread(t *testing.T) {
	ack := func(content ...byte) []byte {
		b, err := fingerprint.Packet{Address: fingerprint.DefaultAddress, PID: fingerprint.PIDAck, Content: content}.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	indexTable := ack(make([]byte, 33)...)
	sysPara := ack(0, 0, 0, 0, 0, 0x01, 0x2C, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 0, 6) // capacity 300
	port := modlinktest.NewScriptPort(func(req []byte) []byte {
		switch req[9] {
		case fingerprint.CmdVfyPwd:
			return append(slices.Clone(indexTable), ack(0)...)
		case fingerprint.CmdReadSysPara:
			return append(ack(0), sysPara...)
		}
		return nil
	})
	m, err := fingerprint.New(port, fingerprint.Config{CommandTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Probe(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if c, err := m.Capacity(testCtx(t)); err != nil || c != 300 {
		t.Fatalf("Capacity = %d, %v; want 300 from the real ReadSysPara ACK", c, err)
	}
}

func TestUnplugReplug(t *testing.T) {
	// The module sends the R503's 0x55 on every power-on, replug included.
	r := setup(t, sim.FingerprintConfig{ResetByte: true}, fingerprint.Config{CommandTimeout: 500 * time.Millisecond, DataPacing: time.Millisecond})
	ctx := testCtx(t)
	if err := r.m.Store(ctx, 1, r.dev.Template(1)); err != nil {
		t.Fatal(err)
	}
	if err := r.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Slots(ctx); !errors.Is(err, hal.ErrFault) && !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("unplugged: %v, want a fault or timeout", err)
	}
	if err := r.plug.Replug(); err != nil {
		t.Fatal(err)
	}
	var slots []int
	haltest.Eventually(t, "the driver to reach the replugged module", func() bool {
		var err error
		slots, err = r.m.Slots(ctx)
		return err == nil
	})
	if !slices.Equal(slots, []int{1}) {
		t.Fatalf("after replug Slots = %v, want [1]", slots)
	}
}

func TestCloseWhileUnplugged(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{CommandTimeout: 500 * time.Millisecond})
	ctx := testCtx(t)
	if err := r.plug.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Slots(ctx); err == nil {
		t.Fatal("Slots succeeded on an unplugged module")
	}
	done := make(chan error, 1)
	go func() { done <- r.m.Close() }()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("Close hung while the port was being reopened")
	}
	if _, err := r.m.Slots(ctx); !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Close wakes Identify whether it waits between polls or for a reply.
func TestCloseUnblocksIdentify(t *testing.T) {
	for _, silent := range []bool{false, true} {
		r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{PollInterval: time.Hour})
		ctx := testCtx(t)
		if silent {
			// The next poll waits for a reply that never comes.
			r = setup(t, sim.FingerprintConfig{}, fingerprint.Config{CommandTimeout: time.Hour})
			r.dev.SetFaults(sim.ReplyFaults{Silent: true})
		}
		ch := identify(t, r, ctx)
		if err := r.m.Close(); err != nil {
			t.Fatal(err)
		}
		if got := await(t, ch); !errors.Is(got.err, hal.ErrClosed) {
			t.Fatalf("silent=%v: Identify after Close: %v, want hal.ErrClosed", silent, got.err)
		}
		if err := r.m.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := r.m.Slots(ctx); !errors.Is(err, hal.ErrClosed) {
			t.Fatalf("Slots after Close: %v", err)
		}
	}
}

func TestContextCancelsIdentify(t *testing.T) {
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{})
	ctx, cancel := context.WithCancel(testCtx(t))
	ch := identify(t, r, ctx)
	cancel()
	if got := await(t, ch); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("Identify after cancel: %v", got.err)
	}
}

// A module missing at Open is in the state of one lost later (the one open
// path): Open succeeds, Health names the port, and once the module appears
// the driver probes it and works.
func TestOpenMissingPort(t *testing.T) {
	dev, err := sim.NewFingerprint(sim.FingerprintConfig{})
	if err != nil {
		t.Fatal(err)
	}
	porttest.MissingAtOpen(t, func(path string) (*fingerprint.R30x, error) {
		return fingerprint.Open(fingerprint.Config{Port: path})
	}, dev, func(ctx context.Context, m *fingerprint.R30x) error {
		if err := m.Store(ctx, 3, dev.Template(1)); err != nil {
			return err
		}
		if got := dev.Slots(); !slices.Equal(got, []int{3}) {
			return fmt.Errorf("module slots %v, want [3]", got)
		}
		return nil
	})
}

func TestPasswordAndAddress(t *testing.T) {
	dev, err := sim.NewFingerprint(sim.FingerprintConfig{Password: 0x1234, Address: 0xA1B2C3D4})
	if err != nil {
		t.Fatal(err)
	}
	plug, err := sim.Attach(dev, filepath.Join(t.TempDir(), "fp"))
	if err != nil {
		t.Fatal(err)
	}
	defer plug.Close()
	ctx := testCtx(t)
	cfg := fingerprint.Config{Port: plug.Path(), Address: 0xA1B2C3D4, CommandTimeout: 500 * time.Millisecond}
	probe := func(cfg fingerprint.Config) (*fingerprint.R30x, error) {
		m, err := fingerprint.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Probe(ctx); err != nil {
			m.Close()
			return nil, err
		}
		return m, nil
	}
	_, err = probe(cfg)
	var ce *fingerprint.CodeError
	if !errors.As(err, &ce) || ce.Code != fingerprint.CodeWrongPassword {
		t.Fatalf("wrong password: %v, want the module's 0x13", err)
	}
	wrongAddr := cfg
	wrongAddr.Address, wrongAddr.Password = 0xFFFFFFFF, 0x1234
	if _, err := probe(wrongAddr); !errors.Is(err, hal.ErrTimeout) {
		t.Fatalf("wrong address: %v, want silence (hal.ErrTimeout)", err)
	}
	cfg.Password = 0x1234
	m, err := probe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Store(ctx, 2, dev.Template(1)); err != nil {
		t.Fatal(err)
	}
	if got := dev.Slots(); !slices.Equal(got, []int{2}) {
		t.Fatalf("module slots %v", got)
	}
}

// cancelMidPoll cancels an Identify while the module still owes the ACK
// to its GenImg (the module holds its replies back for delay), and
// returns once Identify has returned; the ACK is then still to come.
func cancelMidPoll(t *testing.T, r rig, ctx context.Context, delay time.Duration) {
	t.Helper()
	r.dev.SetFaults(sim.ReplyFaults{Delay: delay})
	ictx, cancel := context.WithCancel(ctx)
	ch := identify(t, r, ictx)
	cancel()
	if got := await(t, ch); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("cancelled Identify = %+v, %v; want context.Canceled", got.f, got.err)
	}
	r.dev.SetFaults(sim.ReplyFaults{}) // the owed ACK keeps its delay
}

// An Identify cancelled while a command is outstanding must not leave the
// late ACK on the line for the next command to take as its own (ACKs name
// no instruction: a late GenImg "no finger" looks like any command's
// failure, a late "OK" like its success). Every command works at once
// after the cancel, and a later Identify matches the finger placed.
func TestCancelIdentifyMidCommand(t *testing.T) {
	const delay = 400 * time.Millisecond
	r := setup(t, sim.FingerprintConfig{}, fingerprint.Config{CommandTimeout: 5 * time.Second})
	ctx := testCtx(t)
	if err := r.m.Store(ctx, 2, r.dev.Template(2)); err != nil {
		t.Fatal(err)
	}

	cancelMidPoll(t, r, ctx, delay)
	if slots, err := r.m.Slots(ctx); err != nil || !slices.Equal(slots, []int{2}) {
		t.Fatalf("Slots after a cancelled Identify = %v, %v; want [2]", slots, err)
	}
	cancelMidPoll(t, r, ctx, delay)
	if err := r.m.Clear(ctx); err != nil {
		t.Fatalf("Clear after a cancelled Identify: %v", err)
	}
	if slots := r.dev.Slots(); len(slots) != 0 {
		t.Fatalf("module still holds %v after Clear", slots)
	}
	cancelMidPoll(t, r, ctx, delay)
	if err := r.m.Store(ctx, 9, r.dev.Template(9)); err != nil {
		t.Fatalf("Store after a cancelled Identify: %v", err)
	}
	if err := r.m.Store(ctx, 10, r.dev.Template(10)); err != nil {
		t.Fatal(err)
	}
	cancelMidPoll(t, r, ctx, delay)
	if err := r.m.Delete(ctx, 10); err != nil {
		t.Fatalf("Delete after a cancelled Identify: %v", err)
	}
	if slots := r.dev.Slots(); !slices.Equal(slots, []int{9}) {
		t.Fatalf("module holds %v, want [9]", slots)
	}

	cancelMidPoll(t, r, ctx, delay)
	ch := identify(t, r, ctx)
	if err := r.dev.PlaceFinger(9); err != nil {
		t.Fatal(err)
	}
	if got := await(t, ch); got.err != nil || !got.f.Matched || got.f.Slot != 9 {
		t.Fatalf("Identify after the cancels = %+v, %v; want slot 9", got.f, got.err)
	}
}
