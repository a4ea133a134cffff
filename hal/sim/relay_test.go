package sim

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestDecodeLCUS(t *testing.T) {
	for _, tc := range []struct {
		in      []byte
		ch      byte
		on, ok  bool
		advance int
	}{
		{[]byte{0xA0, 0x01, 0x01, 0xA2}, 1, true, true, 4},
		{[]byte{0xA0, 0x01, 0x00, 0xA1}, 1, false, true, 4},
		{[]byte{0xA0, 0x01, 0x01}, 0, false, false, 0},                // partial
		{[]byte{0x55, 0x00, 0xA0}, 0, false, false, 2},                // noise before a start byte
		{[]byte{0xFF}, 0, false, false, 1},                            // noise only
		{[]byte{0xA0, 0x01, 0x01, 0xA3}, 1, false, false, 1},          // bad checksum
		{[]byte{0xA0, 0x01, 0x02, 0xA3}, 1, false, false, 1},          // unknown operation
		{[]byte{0xA0, 0x00, 0x01, 0xA1}, 0, false, false, 1},          // channel 0
		{[]byte{0xA0, 0xA0, 0x01, 0x01, 0xA2}, 0xA0, false, false, 1}, // stray start byte
	} {
		ch, on, ok, adv := decodeLCUS(tc.in)
		if ch != tc.ch || on != tc.on || ok != tc.ok || adv != tc.advance {
			t.Errorf("% X: ch=%d on=%v ok=%v adv=%d, want %+v", tc.in, ch, on, ok, adv, tc)
		}
	}
}

func FuzzDecodeLCUS(f *testing.F) {
	f.Add([]byte{0xA0, 0x01, 0x01, 0xA2})
	f.Add([]byte{0xA0, 0xA0, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := in
		for len(buf) > 0 {
			_, _, ok, adv := decodeLCUS(buf)
			if adv < 0 || adv > len(buf) || (ok && adv != 4) {
				t.Fatalf("advance %d of %d (ok=%v) on % X", adv, len(buf), ok, buf)
			}
			if adv == 0 {
				if len(buf) >= 4 {
					t.Fatalf("stuck on % X", buf)
				}
				return
			}
			buf = buf[adv:]
		}
	})
}

func TestRelayOverPTY(t *testing.T) {
	r, err := NewRelay(RelayConfig{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := Attach(r, filepath.Join(t.TempDir(), "relay"))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	host, err := openHost(pl.TTY())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	// Noise, a bad checksum, channel 3 (not on a 2-channel board), then a
	// valid frame split across two writes.
	for _, b := range [][]byte{{0x00, 0x13, 0xA0}, {0xA0, 0x01, 0x01, 0xA3}, {0xA0, 0x03, 0x01, 0xA4}, {0xA0, 0x02}, {0x01, 0xA3}} {
		if _, err := host.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := r.Wait(ctx, func(s RelayState) bool { return s.Channels[1] })
	if err != nil {
		t.Fatalf("channel 2 never switched: %+v", s)
	}
	if s.On || s.Switches != 1 || s.BadFrames < 2 {
		t.Fatalf("state %+v: want only channel 2 on, 1 switch, >= 2 bad frames", s)
	}
	r.SetDoorOpen(true)
	if !r.State().DoorOpen {
		t.Fatal("door sensor not set")
	}
	if err := pl.Unplug(); err != nil {
		t.Fatal(err)
	}
	if s := r.State(); s.Channels[1] {
		t.Fatalf("relay still on without power: %+v", s)
	}
	if _, err := NewRelay(RelayConfig{Channels: 9}); err == nil {
		t.Fatal("9 channels accepted")
	}
}
