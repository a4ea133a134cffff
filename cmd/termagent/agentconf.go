package main

import (
	"fmt"

	"termagent/agent"
)

// agentConfig maps the file's agent sections onto agent.Config (Logger and
// Now are left for run to set) and lets the agent check them too.
func (c Config) agentConfig() (agent.Config, error) {
	loc, err := loadLocation(c.Device.TimeZone)
	if err != nil {
		return agent.Config{}, fmt.Errorf("device.time_zone: %w", err)
	}
	cmds := make(map[int]agent.Command, len(c.Commands))
	for typ, cmd := range c.Commands {
		cmds[typ] = agent.Command{Action: agent.Action(cmd.Action), Hook: cmd.Hook}
	}
	s := c.Server
	ac := agent.Config{
		Device: agent.DeviceConfig{
			InOutType:       c.Device.InOutType,
			CommunityCode:   c.Device.CommunityCode,
			Address:         c.Device.Address,
			DeviceIP:        c.Device.DeviceIP,
			DevicePort:      s.Listen.DevicePort,
			HardwareVersion: c.Device.HardwareVersion,
			SoftwareVersion: version,
			Location:        loc,
		},
		Link: agent.LinkConfig{
			ServerAddress: s.Address,
			Transport:     s.Transport,
			Path:          s.WSPath,
			TLS: agent.TLSConfig{
				CAFile:     s.TLS.CAFile,
				PinSHA256:  s.TLS.PinSHA256,
				CertFile:   s.TLS.CertFile,
				KeyFile:    s.TLS.KeyFile,
				ServerName: s.TLS.ServerName,
			},
			KeepAlive:      s.KeepAlive,
			DialTimeout:    s.DialTimeout,
			BackoffMin:     s.BackoffMin,
			BackoffMax:     s.BackoffMax,
			FallbackAfter:  s.FallbackAfter,
			Listen:         s.Listen.Enabled,
			ListenHost:     s.Listen.Host,
			AllowedPeers:   s.Listen.Allow,
			Heartbeat:      agent.HeartbeatConfig{Mod: c.Heartbeat.Mod, Interval: c.Heartbeat.Interval},
			ReadTimeout:    s.ReadTimeout,
			CallTimeout:    s.CallTimeout,
			HandlerTimeout: s.HandlerTimeout,
			MaxMessageSize: s.MaxMessage,
		},
		Upload: agent.UploadConfig{
			Window:     c.Upload.Window,
			RetryMin:   c.Upload.RetryMin,
			RetryMax:   c.Upload.RetryMax,
			NearlyFull: c.Upload.NearlyFull,
		},
		Access: agent.AccessConfig{
			DoorPulse:    c.HAL.Door.Pulse,
			RecordDenied: c.Access.RecordDenied,
			OpenDoorTypes: agent.OpenDoorTypes{
				Card:        c.Access.OpenDoorType.Card,
				Face:        c.Access.OpenDoorType.Face,
				Fingerprint: c.Access.OpenDoorType.Fingerprint,
				Remote:      c.Access.OpenDoorType.Remote,
				Key:         c.Access.OpenDoorType.Key,
			},
		},
		Commands: cmds,
		Hooks: agent.Hooks{
			SetTime:  c.Hooks.SetDeviceTime,
			DeviceIP: c.Hooks.DeviceIP,
			Message:  c.Hooks.Message,
			Restart:  c.Hooks.Restart,
			Timeout:  c.Hooks.Timeout,
		},
		Events: agent.EventTypes{
			Started:          c.Events.Started,
			ModuleFault:      c.Events.ModuleFault,
			ModuleRecovered:  c.Events.ModuleRecovered,
			OutboxNearlyFull: c.Events.OutboxNearlyFull,
			Queue:            c.Events.Queue,
		},
		Modules: agent.ModuleConfig{
			RetryMin:  c.Modules.RetryMin,
			RetryMax:  c.Modules.RetryMax,
			OpTimeout: c.Modules.OpTimeout,
		},
	}
	if err := ac.Validate(); err != nil {
		return agent.Config{}, err
	}
	return ac, nil
}
