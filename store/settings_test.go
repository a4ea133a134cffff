package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
)

func TestUUIDIsGeneratedOnceAndKept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	s, err := db.DeviceInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(s.UUID); err != nil {
		t.Fatalf("generated uuid %q: %v", s.UUID, err)
	}
	db.Close()
	db = mustOpen(t, path, testConfig(t))
	again, err := db.DeviceInfo(ctx)
	if err != nil || again.UUID != s.UUID {
		t.Fatalf("uuid after reopen %q (%v), want %q", again.UUID, err, s.UUID)
	}
	other := mustOpen(t, "", testConfig(t))
	o, _ := other.DeviceInfo(ctx)
	if o.UUID == s.UUID {
		t.Error("two databases share a uuid")
	}
}

func TestSaveDeviceInfoIsAtomicAndValidated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := mustOpen(t, path, testConfig(t))
	want := Settings{UUID: "server-set", DeviceIP: "192.168.1.20", DevicePort: 8001, ServerIP: "10.0.0.2",
		ServerPort: 9000, Address: "公司门口", CommunityCode: "C-17", PrevServerIP: "10.0.0.1", PrevServerPort: 9001}
	if err := db.SaveDeviceInfo(ctx, want); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]Settings{
		"port too big":  func() Settings { s := want; s.ServerPort = 70000; return s }(),
		"port negative": func() Settings { s := want; s.DevicePort = -1; return s }(),
		"empty uuid":    func() Settings { s := want; s.UUID = ""; return s }(),
		"long address":  func() Settings { s := want; s.Address = string(make([]byte, MaxTextBytes+1)); return s }(),
		"bad utf8":      func() Settings { s := want; s.CommunityCode = "\xff\xfe"; return s }(),
	} {
		if err := db.SaveDeviceInfo(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: SaveDeviceInfo = %v, want ErrInvalid", name, err)
		}
	}
	_, err := db.UpdateDeviceInfo(ctx, func(s *Settings) error {
		s.Address = "half-way"
		s.ServerPort = 0x10000
		return nil
	})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid update = %v, want ErrInvalid", err)
	}
	boom := errors.New("boom")
	if _, err := db.UpdateDeviceInfo(ctx, func(s *Settings) error { s.Address = "x"; return boom }); !errors.Is(err, boom) {
		t.Errorf("update whose fn fails = %v, want boom", err)
	}
	db.Close()
	db = mustOpen(t, path, testConfig(t))
	got, err := db.DeviceInfo(ctx)
	if err != nil || got != want {
		t.Errorf("after refused writes and reopen: %+v (%v), want %+v", got, err, want)
	}
}

func TestSeedFillsOnlyEmptyFields(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	before, _ := db.DeviceInfo(ctx)
	seed := Settings{UUID: "from-config", ServerIP: "10.0.0.2", ServerPort: 9000, DevicePort: 8001, Address: "gate"}
	s, err := db.SeedDeviceInfo(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	if s.UUID != before.UUID || s.ServerIP != "10.0.0.2" || s.ServerPort != 9000 || s.DevicePort != 8001 || s.Address != "gate" {
		t.Errorf("first seed: %+v", s)
	}
	if _, err := db.UpdateDeviceInfo(ctx, func(s *Settings) error { s.ServerIP = "10.9.9.9"; s.Address = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	s, err = db.SeedDeviceInfo(ctx, Settings{ServerIP: "10.0.0.2", Address: "gate 2", ServerPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerIP != "10.9.9.9" || s.Address != "gate 2" || s.ServerPort != 9000 {
		t.Errorf("second seed overwrote the server's values or missed an empty one: %+v", s)
	}
}

func TestMoveRevertConfirmServer(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, "", testConfig(t))
	if _, err := db.SeedDeviceInfo(ctx, Settings{ServerIP: "10.0.0.1", ServerPort: 9000}); err != nil {
		t.Fatal(err)
	}
	s, err := db.MoveServer(ctx, "10.0.0.2", 9100)
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerIP != "10.0.0.2" || s.ServerPort != 9100 || s.PrevServerIP != "10.0.0.1" || s.PrevServerPort != 9000 {
		t.Fatalf("after MoveServer: %+v", s)
	}
	if s, _ = db.MoveServer(ctx, "10.0.0.2", 9100); s.PrevServerIP != "10.0.0.1" {
		t.Errorf("moving to the current server lost the fallback: %+v", s)
	}
	if _, err := db.MoveServer(ctx, "10.0.0.3", 70000); !errors.Is(err, ErrInvalid) {
		t.Errorf("move to port 70000 = %v, want ErrInvalid", err)
	}
	s, err = db.RevertServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerIP != "10.0.0.1" || s.ServerPort != 9000 || s.PrevServerIP != "" || s.PrevServerPort != 0 {
		t.Fatalf("after RevertServer: %+v", s)
	}
	if s, _ = db.RevertServer(ctx); s.ServerIP != "10.0.0.1" {
		t.Errorf("revert with nothing to revert to changed the server: %+v", s)
	}
	db.MoveServer(ctx, "10.0.0.5", 9500)
	s, err = db.ConfirmServer(ctx)
	if err != nil || s.ServerIP != "10.0.0.5" || s.PrevServerIP != "" {
		t.Errorf("after ConfirmServer: %+v, %v", s, err)
	}
}
