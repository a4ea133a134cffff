package store

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Settings is the device info of protocol/PROTOCOL.md (get_device_info,
// set_device_info) plus the previous server address kept for fallback.
// Ports are 0 when unset, else 1..65535; the store checks only lengths,
// UTF-8 and port ranges (address syntax is the caller's business).
type Settings struct {
	// UUID identifies the device; generated once (a random UUID) when
	// the database is created and kept; the server may replace it.
	UUID string
	// DeviceIP is the configured or server-set local address.
	DeviceIP string
	// DevicePort is the port the device listens on in listen mode.
	DevicePort int
	// ServerIP and ServerPort are where the device connects now.
	ServerIP   string
	ServerPort int
	// Address is free text (e.g. "公司门口").
	Address string
	// CommunityCode is set by the server.
	CommunityCode string
	// PrevServerIP and PrevServerPort are the server before the last
	// MoveServer, kept until ConfirmServer or RevertServer; empty/0 when
	// there is nothing to fall back to.
	PrevServerIP   string
	PrevServerPort int
}

// validate checks lengths, UTF-8 and port ranges.
func (s Settings) validate() error {
	texts := []struct{ name, v string }{
		{"uuid", s.UUID}, {"device_ip", s.DeviceIP}, {"server_ip", s.ServerIP},
		{"address", s.Address}, {"community_code", s.CommunityCode}, {"prev_server_ip", s.PrevServerIP},
	}
	for _, t := range texts {
		if err := checkText(t.name, t.v); err != nil {
			return err
		}
	}
	if s.UUID == "" {
		return fmt.Errorf("%w: uuid is empty", ErrInvalid)
	}
	ports := []struct {
		name string
		v    int
	}{{"device_port", s.DevicePort}, {"server_port", s.ServerPort}, {"prev_server_port", s.PrevServerPort}}
	for _, p := range ports {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%w: %s %d is outside 0..65535", ErrInvalid, p.name, p.v)
		}
	}
	return nil
}

// checkText refuses text that is too long or not UTF-8.
func checkText(name, v string) error {
	if len(v) > MaxTextBytes {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, name, len(v), MaxTextBytes)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, name)
	}
	return nil
}

const settingsCols = `uuid, device_ip, device_port, server_ip, server_port, address,
	community_code, prev_server_ip, prev_server_port`

type scanner interface{ Scan(dest ...any) error }

func scanSettings(row scanner) (Settings, error) {
	var s Settings
	err := row.Scan(&s.UUID, &s.DeviceIP, &s.DevicePort, &s.ServerIP, &s.ServerPort,
		&s.Address, &s.CommunityCode, &s.PrevServerIP, &s.PrevServerPort)
	return s, err
}

// ensureSettings creates the settings row with a fresh UUID if missing.
func ensureSettings(ctx context.Context, w *sql.DB) error {
	_, err := w.ExecContext(ctx, `INSERT INTO settings (id, uuid) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`,
		uuid.NewString())
	if err != nil {
		return fmt.Errorf("create settings: %w", err)
	}
	return nil
}

// DeviceInfo returns the stored settings.
func (db *DB) DeviceInfo(ctx context.Context) (Settings, error) {
	if db.isClosed() {
		return Settings{}, ErrClosed
	}
	s, err := scanSettings(db.readRow(ctx, `SELECT `+settingsCols+` FROM settings WHERE id = 1`))
	if err != nil {
		return Settings{}, fmt.Errorf("read device info: %w", err)
	}
	return s, nil
}

// SaveDeviceInfo replaces every stored setting with s in one transaction
// (all or nothing) and returns once it is durable. Invalid values change
// nothing and return ErrInvalid.
func (db *DB) SaveDeviceInfo(ctx context.Context, s Settings) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("save device info: %w", err)
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error { return saveSettings(ctx, tx, s) }, nil)
	if err != nil {
		return fmt.Errorf("save device info: %w", err)
	}
	return nil
}

func saveSettings(ctx context.Context, tx *sql.Tx, s Settings) error {
	_, err := tx.ExecContext(ctx, `UPDATE settings SET uuid = ?, device_ip = ?, device_port = ?,
		server_ip = ?, server_port = ?, address = ?, community_code = ?,
		prev_server_ip = ?, prev_server_port = ? WHERE id = 1`,
		s.UUID, s.DeviceIP, s.DevicePort, s.ServerIP, s.ServerPort, s.Address,
		s.CommunityCode, s.PrevServerIP, s.PrevServerPort)
	return err
}

// UpdateDeviceInfo reads the settings, lets fn change them and stores the
// result, all in one transaction: nothing changes if fn returns an error or
// the result is invalid. fn must not call the DB. Returns the stored
// settings. This is set_device_info's "any subset of fields".
func (db *DB) UpdateDeviceInfo(ctx context.Context, fn func(*Settings) error) (Settings, error) {
	var out Settings
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		s, err := scanSettings(tx.QueryRowContext(ctx, `SELECT `+settingsCols+` FROM settings WHERE id = 1`))
		if err != nil {
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		if err := s.validate(); err != nil {
			return err
		}
		out = s
		return saveSettings(ctx, tx, s)
	}, nil)
	if err != nil {
		return Settings{}, fmt.Errorf("update device info: %w", err)
	}
	return out, nil
}

// SeedDeviceInfo fills the settings that are still empty (text "" or port
// 0) from seed, typically the configuration file: configuration provides
// the first values, the server's later changes win. UUID and the Prev*
// fields are never seeded (the UUID is generated once, then owned by the
// server). Returns the resulting settings.
func (db *DB) SeedDeviceInfo(ctx context.Context, seed Settings) (Settings, error) {
	return db.UpdateDeviceInfo(ctx, func(s *Settings) error {
		fillText(&s.DeviceIP, seed.DeviceIP)
		fillPort(&s.DevicePort, seed.DevicePort)
		fillText(&s.ServerIP, seed.ServerIP)
		fillPort(&s.ServerPort, seed.ServerPort)
		fillText(&s.Address, seed.Address)
		fillText(&s.CommunityCode, seed.CommunityCode)
		return nil
	})
}

func fillText(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func fillPort(dst *int, v int) {
	if *dst == 0 {
		*dst = v
	}
}

// MoveServer makes ip:port the current server and keeps the current one as
// the previous (for RevertServer), durably, in one transaction. Moving to
// the server already current changes nothing. Returns the stored settings.
func (db *DB) MoveServer(ctx context.Context, ip string, port int) (Settings, error) {
	return db.UpdateDeviceInfo(ctx, func(s *Settings) error {
		if s.ServerIP == ip && s.ServerPort == port {
			return nil
		}
		s.PrevServerIP, s.PrevServerPort = s.ServerIP, s.ServerPort
		s.ServerIP, s.ServerPort = ip, port
		return nil
	})
}

// RevertServer goes back to the previous server after a failed move and
// forgets it; with no previous server it changes nothing. Returns the stored
// settings.
func (db *DB) RevertServer(ctx context.Context) (Settings, error) {
	return db.UpdateDeviceInfo(ctx, func(s *Settings) error {
		if s.PrevServerIP == "" && s.PrevServerPort == 0 {
			return nil
		}
		s.ServerIP, s.ServerPort = s.PrevServerIP, s.PrevServerPort
		s.PrevServerIP, s.PrevServerPort = "", 0
		return nil
	})
}

// ConfirmServer forgets the previous server once the new one answered.
// Returns the stored settings.
func (db *DB) ConfirmServer(ctx context.Context) (Settings, error) {
	return db.UpdateDeviceInfo(ctx, func(s *Settings) error {
		s.PrevServerIP, s.PrevServerPort = "", 0
		return nil
	})
}
