package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"termagent/protocol"
	"termagent/store"
)

// handler returns the protocol handler of one session: every request of
// protocol/PROTOCOL.md §5 "Messages"; an unknown mod is answered -1 by the Mux.
func (s *session) handler() protocol.Handler {
	m := protocol.NewMux()
	m.HandleFunc(protocol.ModGetDeviceInfo, s.getDeviceInfo)
	m.HandleFunc(protocol.ModSetDeviceInfo, s.setDeviceInfo)
	m.HandleFunc(protocol.ModDownloadPerson, s.timed(s.a.downloadPerson))
	m.HandleFunc(protocol.ModRemovePerson, s.timed(s.a.removePerson))
	m.HandleFunc(protocol.ModSendUserCommand, s.userCommand)
	m.HandleFunc(protocol.ModSendDeviceCommand, s.userCommand)
	m.HandleFunc(protocol.ModSetDeviceTime, s.timed(s.a.setDeviceTime))
	m.HandleFunc(protocol.ModGetDeviceStatus, s.timed(s.a.getDeviceStatus))
	return m
}

type handlerFunc = func(ctx context.Context, req *protocol.Message) (*protocol.Message, error)

// timed bounds a handler by Link.HandlerTimeout.
func (s *session) timed(h handlerFunc) handlerFunc {
	return func(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, s.a.cfg.Link.HandlerTimeout)
		defer cancel()
		return h(ctx, req)
	}
}

// dbError answers -3 (or -1 for a value the store refused as invalid).
func dbError(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if errors.Is(err, store.ErrInvalid) {
		return protocol.Errorf(protocol.CodeError, "%w", err)
	}
	return protocol.Errorf(protocol.CodeDatabase, "%w", err)
}

// getDeviceInfo answers get_device_info (and set_device_info without a
// device_info object).
func (s *session) getDeviceInfo(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	a := s.a
	st, err := a.parts.Store.DeviceInfo(ctx)
	if err != nil {
		return nil, dbError("read device info: %w", err)
	}
	ip := st.DeviceIP
	if la := s.conn.LocalAddr(); la != nil {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			ip = ap.Addr().Unmap().String()
		} else if h, _, err := net.SplitHostPort(la.String()); err == nil {
			ip = h
		}
	}
	port := st.DevicePort
	if port == 0 {
		port = a.cfg.Device.DevicePort
	}
	resp := req.Reply(protocol.CodeOK, "")
	resp.DeviceInfo = &protocol.DeviceInfo{
		UUID:            st.UUID,
		DeviceIP:        ip,
		DevicePort:      port,
		ServerIP:        st.ServerIP,
		ServerPort:      st.ServerPort,
		Address:         st.Address,
		CommunityCode:   st.CommunityCode,
		SoftwareVersion: a.cfg.Device.SoftwareVersion,
		HardwareVersion: a.cfg.Device.HardwareVersion,
		Fields:          protocol.AllDeviceFields,
	}
	return resp, nil
}

// setDeviceInfo answers set_device_info: validate every field present,
// store them in one transaction (nothing changes on -1), reply, then move
// to a new server / listen on a new port, and run the device_ip hook.
func (s *session) setDeviceInfo(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	if req.WantsDeviceInfo() {
		return s.getDeviceInfo(ctx, req)
	}
	a := s.a
	in := req.DeviceInfo
	if err := validateDeviceInfo(in); err != nil {
		return nil, protocol.Errorf(protocol.CodeError, "%v", err)
	}
	if in.Fields == 0 {
		return nil, protocol.Errorf(protocol.CodeError, "device_info carries no field")
	}
	var old store.Settings
	st, err := a.parts.Store.UpdateDeviceInfo(ctx, func(st *store.Settings) error {
		old = *st
		if in.Has(protocol.FieldUUID) {
			st.UUID = in.UUID
		}
		if in.Has(protocol.FieldDeviceIP) {
			st.DeviceIP = in.DeviceIP
		}
		if in.Has(protocol.FieldDevicePort) {
			st.DevicePort = in.DevicePort
		}
		if in.Has(protocol.FieldAddress) {
			st.Address = in.Address
		}
		if in.Has(protocol.FieldCommunityCode) {
			st.CommunityCode = in.CommunityCode
		}
		ip, port := st.ServerIP, st.ServerPort
		if in.Has(protocol.FieldServerIP) {
			ip = in.ServerIP
		}
		if in.Has(protocol.FieldServerPort) {
			port = in.ServerPort
		}
		if ip != st.ServerIP || port != st.ServerPort {
			// Keep the server we are connected to for the fallback (a
			// second move before the first one is confirmed keeps the
			// server that worked).
			if st.PrevServerIP == "" && st.PrevServerPort == 0 {
				st.PrevServerIP, st.PrevServerPort = st.ServerIP, st.ServerPort
			}
			st.ServerIP, st.ServerPort = ip, port
		}
		return nil
	})
	if err != nil {
		return nil, dbError("store device info: %w", err)
	}
	a.invalidateSettings()
	a.log.Info().Str(logServer, joinHostPort(st.ServerIP, st.ServerPort)).Msg("device info changed by the server")
	serverMoved := st.ServerIP != old.ServerIP || st.ServerPort != old.ServerPort
	portMoved := a.cfg.Link.Listen && st.DevicePort != old.DevicePort
	ipChanged := st.DeviceIP != old.DeviceIP && a.cfg.Hooks.DeviceIP != ""
	if serverMoved && !a.cfg.Link.Listen || portMoved || ipChanged {
		newIP := st.DeviceIP
		// Reply, then act: the Peer runs this once the response is
		// written (or could not be: the link ended).
		protocol.AfterReply(ctx, func(error) {
			if serverMoved && !a.cfg.Link.Listen || portMoved {
				a.link.move()
			}
			if ipChanged {
				go a.applyDeviceIP(newIP)
			}
		})
	}
	return nil, nil
}

// applyDeviceIP runs the device_ip hook; failures are logged.
func (a *Agent) applyDeviceIP(ip string) {
	if err := runHook(context.Background(), a.cfg.Hooks.Timeout, a.cfg.Hooks.DeviceIP, ip); err != nil {
		a.log.Error().Err(err).Str("device_ip", ip).Msg("device_ip hook failed")
		return
	}
	a.log.Info().Str("device_ip", ip).Msg("device_ip applied")
}

// validateDeviceInfo checks the fields a set_device_info carries.
func validateDeviceInfo(d *protocol.DeviceInfo) error {
	checkIP := func(name, v string) error {
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("device_info.%s %q is not an IP address", name, v)
		}
		return nil
	}
	checkPort := func(name string, v int) error {
		if v < 1 || v > 65535 {
			return fmt.Errorf("device_info.%s %d is outside 1..65535", name, v)
		}
		return nil
	}
	if d.Has(protocol.FieldUUID) && d.UUID == "" {
		return errors.New("device_info.uuid is empty")
	}
	if d.Has(protocol.FieldDeviceIP) {
		if err := checkIP("device_ip", d.DeviceIP); err != nil {
			return err
		}
	}
	if d.Has(protocol.FieldServerIP) {
		if err := checkIP("server_ip", d.ServerIP); err != nil {
			return err
		}
	}
	if d.Has(protocol.FieldDevicePort) {
		if err := checkPort("device_port", d.DevicePort); err != nil {
			return err
		}
	}
	if d.Has(protocol.FieldServerPort) {
		if err := checkPort("server_port", d.ServerPort); err != nil {
			return err
		}
	}
	if d.Has(protocol.FieldSoftwareVersion) || d.Has(protocol.FieldHardwareVersion) {
		return errors.New("device_info: software_version and hardware_version are read-only")
	}
	return nil
}

// userCommand answers send_user_command (and a send_device_command sent by
// a server) through the configured table.
func (s *session) userCommand(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	a := s.a
	cmd, ok := a.cfg.Commands[req.CommandType]
	if !ok {
		return nil, protocol.Errorf(protocol.CodeError, "command_type %d is not supported", req.CommandType)
	}
	log := a.log.Info().Str(logMod, req.Mod).Int("command_type", req.CommandType).Str("action", string(cmd.Action))
	switch cmd.Action {
	case ActionOpenDoor:
		log.Msg("remote door open")
		if err := a.remoteOpen(ctx); err != nil {
			return nil, err
		}
	case ActionMessage:
		log.Str("text", req.CommandValue).Msg("message from the server")
		if h := a.cfg.Hooks.Message; h != "" {
			if err := runHook(ctx, a.cfg.Hooks.Timeout, h, req.CommandValue); err != nil {
				return nil, protocol.Errorf(protocol.CodeError, "show message: %v", err)
			}
		}
	case ActionRestart:
		log.Msg("restart ordered by the server")
		protocol.AfterReply(ctx, func(error) {
			if h := a.cfg.Hooks.Restart; h != "" {
				go func() {
					if err := runHook(context.Background(), a.cfg.Hooks.Timeout, h); err != nil {
						a.log.Error().Err(err).Msg("restart hook failed")
					}
				}()
				return
			}
			a.requestRestart()
		})
	case ActionReleaseQuarantine:
		qr, ok := a.parts.Store.(quarantineRetrier)
		if !ok {
			return nil, protocol.Errorf(protocol.CodeError, "this store has no quarantine")
		}
		n, err := qr.Unquarantine(ctx)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeError, "release quarantined records: %v", err)
		}
		log.Int("records", n).Msg("quarantined records released by the server")
	case ActionHook:
		log.Str("hook", cmd.Hook).Msg("running hook")
		if err := runHook(ctx, a.cfg.Hooks.Timeout, cmd.Hook, req.CommandValue); err != nil {
			return nil, protocol.Errorf(protocol.CodeError, "%v", err)
		}
	default:
		return nil, protocol.Errorf(protocol.CodeError, "command_type %d has no usable action", req.CommandType)
	}
	return nil, nil
}

// setDeviceTime answers set_device_time through the configured hook.
func (a *Agent) setDeviceTime(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	t, err := protocol.ParseTime(req.Time, a.cfg.Device.Location)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeError, "time: %v", err)
	}
	if a.cfg.Hooks.SetTime == "" {
		return nil, protocol.Errorf(protocol.CodeError, "set_device_time is not configured on this terminal (no hook)")
	}
	arg := t.In(a.cfg.Device.Location).Format(time.DateTime)
	if err := runHook(ctx, a.cfg.Hooks.Timeout, a.cfg.Hooks.SetTime, arg); err != nil {
		return nil, protocol.Errorf(protocol.CodeError, "set time: %v", err)
	}
	a.log.Info().Str("time", arg).Msg("clock set by the server")
	return nil, nil
}

// getDeviceStatus answers get_device_status.
func (a *Agent) getDeviceStatus(ctx context.Context, req *protocol.Message) (*protocol.Message, error) {
	st := a.Status(ctx)
	ds := &protocol.DeviceStatus{
		Link:            string(st.Link),
		OutboxDepth:     st.OutboxDepth,
		PersonsEnrolled: st.Persons,
		SoftwareVersion: st.SoftwareVersion,
		UptimeSeconds:   int64(st.Uptime / time.Second),
		Door:            "locked",
	}
	if !st.OutboxOldest.IsZero() {
		ds.OldestUnsent = protocol.FormatTime(st.OutboxOldest, a.cfg.Device.Location)
	}
	if st.DoorUnlocked {
		ds.Door = "unlocked"
	}
	if m := st.Modules[moduleDoor]; m.State == ModuleAbsent {
		ds.Door = "none"
	}
	for _, name := range []string{moduleCard, moduleFingerprint, moduleFace, moduleDoor} {
		m := st.Modules[name]
		ds.Modules = append(ds.Modules, protocol.ModuleStatus{Name: name, State: string(m.State), Detail: m.Error})
	}
	if len(st.Errors) > 0 {
		return nil, protocol.Errorf(protocol.CodeDatabase, "read status: %s", st.Errors[0])
	}
	resp := req.Reply(protocol.CodeOK, "")
	resp.DeviceStatus = ds
	return resp, nil
}
