package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"termagent/hal/haltest"
)

// readFrame reads one whole EF AA frame from c.
func readFrame(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	h := make([]byte, 5)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, int(binary.BigEndian.Uint16(h[3:]))+1)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	return append(h, rest...)
}

// Golden frames: hal/face's golden frames and replies computed with the
// same XOR rule.
func TestFaceGolden(t *testing.T) {
	dev, err := NewFace(FaceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := serveOnPipe(t, dev)
	if got := readFrame(t, c); !bytes.Equal(got, haltest.Unhex(t, "EF AA 01 00 01 00 00")) {
		t.Fatalf("power-on note % X, want NOTE READY", got)
	}
	roundTrip(t, c, "EF AA 11 00 00 11", "EF AA 00 00 03 11 00 00 12")    // GET_STATUS: standby
	roundTrip(t, c, "EF AA 20 00 02 00 01 23", "EF AA 00 00 02 20 08 2A") // DELETE user 1: unknown user
	roundTrip(t, c, "EF AA 24 00 00 24", "EF AA 00 00 03 24 00 00 27")    // GET_ALL_USERID: none
	roundTrip(t, c, "EF AA 21 00 00 21", "EF AA 00 00 02 21 00 23")       // DELETE ALL
	roundTrip(t, c, "EF AA 12 00 02 00 0A 19", "")                        // bad parity: ignored
	roundTrip(t, c, "EF AA 77 00 00 77", "EF AA 00 00 02 77 05 70")       // unknown message
	if _, err := dev.AddUser("alice"); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "EF AA 24 00 00 24", "EF AA 00 00 05 24 00 01 00 01 21") // one user, id 1
	if err := dev.ShowFace(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(haltest.Unhex(t, "EF AA 12 00 02 00 0A 1A")); err != nil {
		t.Fatal(err)
	}
	if note := readFrame(t, c); note[2] != faceMsgNote || note[5] != faceNoteFaceState {
		t.Fatalf("before the verify reply % X, want NOTE FACE_STATE", note)
	}
	reply := readFrame(t, c)
	if reply[2] != faceMsgReply || reply[5] != faceMsgVerify || reply[6] != faceOK ||
		binary.BigEndian.Uint16(reply[7:]) != 1 || !bytes.HasPrefix(reply[9:], []byte("alice\x00")) {
		t.Fatalf("verify reply % X, want user 1 alice", reply)
	}
}

func TestFacePhotoEnrolAndReset(t *testing.T) {
	dev, err := NewFace(FaceConfig{MinPhoto: 4})
	if err != nil {
		t.Fatal(err)
	}
	c := serveOnPipe(t, dev)
	readFrame(t, c) // READY
	send := func(data []byte) []byte {
		t.Helper()
		if _, err := c.Write(faceEncode(0xF7, data)); err != nil {
			t.Fatal(err)
		}
		return readFrame(t, c)
	}
	photo := []byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3}
	if r := send([]byte{0, 0, 0, 0, 0, 7, 0}); r[6] != faceOK {
		t.Fatalf("start: % X", r)
	}
	if r := send(append([]byte{0, 1}, photo[:4]...)); r[6] != faceOK || r[8] != 1 {
		t.Fatalf("chunk 1: % X", r)
	}
	r := send(append([]byte{0, 2}, photo[4:]...))
	if r[6] != faceOK || len(r) != 12 || binary.BigEndian.Uint16(r[9:]) != 1 {
		t.Fatalf("last chunk: % X, want seq 2 and user 1", r)
	}
	// Out-of-order packet.
	if r := send([]byte{0, 5, 1}); r[6] != faceInvalidParam {
		t.Fatalf("unexpected sequence: % X", r)
	}
	// Reset during VERIFY: no reply, NOTE READY.
	if _, err := c.Write(haltest.Unhex(t, "EF AA 12 00 02 00 0A 1A")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); dev.Verifies() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the module never started verifying")
		}
	}
	dev.Reset()
	if got := readFrame(t, c); !bytes.Equal(got, haltest.Unhex(t, "EF AA 01 00 01 00 00")) {
		t.Fatalf("after Reset % X, want NOTE READY", got)
	}
	if ids := dev.Users(); len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("users %v after reset, want [1] (flash survives)", ids)
	}
}

func TestFaceConfigBounds(t *testing.T) {
	for _, c := range []FaceConfig{{MaxUsers: 256}, {MinPhoto: 10, MaxPhoto: 5}, {PhotoEnrollMsgID: 0x12}} {
		if _, err := NewFace(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	dev, _ := NewFace(FaceConfig{MaxUsers: 1})
	if _, err := dev.AddUser("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.AddUser("b"); err == nil {
		t.Error("AddUser beyond MaxUsers accepted")
	}
	if err := dev.ShowFace(0); err == nil {
		t.Error("ShowFace(0) accepted")
	}
}

// FuzzFaceServe: whatever the host sends, the module neither panics nor
// hangs.
func FuzzFaceServe(f *testing.F) {
	f.Add([]byte{0xEF, 0xAA, 0x11, 0, 0, 0x11})
	f.Add([]byte{0xEF, 0xAA, 0xF7, 0, 7, 0, 0, 0, 0, 0, 9, 0, 0xF9})
	f.Add([]byte{0xEF, 0xAA, 0x12, 0, 2, 0, 1, 0x11})
	f.Fuzz(func(t *testing.T, in []byte) {
		dev, err := NewFace(FaceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		serveInput(t, dev, in)
	})
}

// serveInput serves in to dev over a pipe, cancels, and fails the test if
// Serve does not return (a panic fails it by itself).
func serveInput(t *testing.T, dev Device, in []byte) {
	t.Helper()
	host, mod := net.Pipe()
	defer host.Close()
	defer mod.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Serve(ctx, mod) }()
	go io.Copy(io.Discard, host)
	host.Write(in)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve hung")
	}
}
