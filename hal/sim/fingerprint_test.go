package sim

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"termagent/hal/haltest"
)

// serveOnPipe runs dev.Serve on one end of a pipe and returns the other.
func serveOnPipe(t *testing.T, dev Device) net.Conn {
	t.Helper()
	host, mod := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Serve(ctx, mod) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		host.Close()
		mod.Close()
	})
	return host
}

// roundTrip writes req and reads len(want) bytes, which must equal want.
func roundTrip(t *testing.T, c net.Conn, req, want string) {
	t.Helper()
	if _, err := c.Write(haltest.Unhex(t, req)); err != nil {
		t.Fatal(err)
	}
	w := haltest.Unhex(t, want)
	got := make([]byte, len(w))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reply to % X: %v", req, err)
	}
	if !bytes.Equal(got, w) {
		t.Fatalf("reply to %s:\n got % X\nwant % X", req, got, w)
	}
}

// The simulator answers with the checked vectors of the user manuals (see
// hal/fingerprint's packet_test.go), including a real module's ReadSysPara
// capture.
func TestFingerprintGolden(t *testing.T) {
	dev, err := NewFingerprint(FingerprintConfig{Capacity: 80, BaudN: 12})
	if err != nil {
		t.Fatal(err)
	}
	c := serveOnPipe(t, dev)
	const ok = "EF 01 FF FF FF FF 07 00 03 00 00 0A"
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 07 13 00 00 00 00 00 1B", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 0F 00 13",
		"EF 01 FF FF FF FF 07 00 13 00 00 00 00 00 00 50 00 03 FF FF FF FF 00 02 00 0C 04 77")
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 01 00 05", "EF 01 FF FF FF FF 07 00 03 02 00 0C") // no finger
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 1D 00 21", "EF 01 FF FF FF FF 07 00 05 00 00 00 00 0C")

	// Store a template at slot 5 through DownChar, then find it.
	tpl := dev.Template(1)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 04 09 01 00 0F", ok)
	var data []byte
	for i := 0; i < len(tpl); i += 128 {
		pid := byte(0x02)
		if i+128 >= len(tpl) {
			pid = 0x08
		}
		data = append(data, dev.fpEncode(pid, tpl[i:i+128])...)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 06 06 01 00 05 00 13", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 1D 00 21", "EF 01 FF FF FF FF 07 00 05 00 00 01 00 0D")
	if err := dev.PlaceFinger(5); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 01 00 05", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 04 02 01 00 08", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 08 04 01 00 00 00 C8 00 D6", "EF 01 FF FF FF FF 07 00 07 00 00 05 00 64 00 77")
	if err := dev.PlaceUnknownFinger(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 01 00 05", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 04 02 01 00 08", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 08 04 01 00 00 00 C8 00 D6", "EF 01 FF FF FF FF 07 00 07 09 00 00 00 00 00 17")

	// Index table page 0: slot 5 is bit 5 of byte 0.
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 04 1F 00 00 24",
		"EF 01 FF FF FF FF 07 00 23 00 20"+strings.Repeat(" 00", 31)+" 00 4A")
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 07 0C 00 05 00 01 00 1A", ok)
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 0D 00 11", ok)
	if got := dev.Slots(); len(got) != 0 {
		t.Fatalf("slots %v after DeleteChar and Empty", got)
	}
}

func TestFingerprintBadInput(t *testing.T) {
	dev, err := NewFingerprint(FingerprintConfig{Password: 7})
	if err != nil {
		t.Fatal(err)
	}
	c := serveOnPipe(t, dev)
	// Bad checksum: error receiving the packet.
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 01 00 06", "EF 01 FF FF FF FF 07 00 03 01 00 0B")
	// Password not verified yet.
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 01 00 05", "EF 01 FF FF FF FF 07 00 03 21 00 2B")
	// Wrong password.
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 07 13 00 00 00 00 00 1B", "EF 01 FF FF FF FF 07 00 03 13 00 1D")
	// Another address is ignored; noise is skipped; the next command is answered.
	if _, err := c.Write(haltest.Unhex(t, "55 00 EF EF 01 12 34 56 78 01 00 03 01 00 05")); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 07 13 00 00 00 07 00 22", "EF 01 FF FF FF FF 07 00 03 00 00 0A")
	// An unknown instruction.
	roundTrip(t, c, "EF 01 FF FF FF FF 01 00 03 77 00 7B", "EF 01 FF FF FF FF 07 00 03 FC 01 06")
}

func TestFingerprintConfigBounds(t *testing.T) {
	for _, c := range []FingerprintConfig{{Capacity: 2000}, {PacketSize: 100}, {TemplateSize: 5000}, {BaudN: 13}} {
		if _, err := NewFingerprint(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	dev, _ := NewFingerprint(FingerprintConfig{})
	if err := dev.PlaceFinger(3); err == nil {
		t.Error("PlaceFinger on an empty slot accepted")
	}
	for range fpPendingFinger {
		if err := dev.PlaceUnknownFinger(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.PlaceUnknownFinger(); err == nil {
		t.Error("unbounded finger queue")
	}
	if !bytes.Equal(dev.Template(3), dev.Template(3)) || bytes.Equal(dev.Template(3), dev.Template(4)) {
		t.Error("Template is not deterministic per finger")
	}
}

// FuzzFingerprintServe: whatever the host sends, the module neither
// panics nor stops serving.
func FuzzFingerprintServe(f *testing.F) {
	f.Add(haltest.Unhex(f, "EF 01 FF FF FF FF 01 00 04 09 01 00 0F EF 01 FF FF FF FF 02 00 05 01 02 03 00 0D"))
	f.Add(haltest.Unhex(f, "EF 01 FF FF FF FF 01 00 03 0F 00 13"))
	f.Add(haltest.Unhex(f, "EF 01 FF FF FF FF 01 01 02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		dev, err := NewFingerprint(FingerprintConfig{})
		if err != nil {
			t.Fatal(err)
		}
		serveInput(t, dev, in)
	})
}
