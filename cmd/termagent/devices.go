package main

import (
	"fmt"

	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
)

// openDevices builds the configured drivers and hands them to the agent. A
// driver that is "none" leaves the part nil (the terminal has no such
// module); the door "none" still records the logical lock state. A device
// missing at start is not an error: its driver reports it lost (the agent
// shows it faulty and sends the event) and reopens it with its own backoff,
// exactly as when it is unplugged later. Only a bad configuration, or a
// GPIO line that does not exist, fails here.
func (d *daemon) openDevices() error {
	h := d.cfg.HAL
	log := d.log
	if h.Card.Driver != driverNone {
		r, err := card.Open(card.Config{
			Port:         h.Card.Port,
			Protocol:     card.Protocol(h.Card.Driver),
			Baud:         h.Card.Baud,
			Line:         card.Line{Hex: h.Card.Line.Hex, MinDigits: h.Card.Line.MinDigits, MaxDigits: h.Card.Line.MaxDigits},
			Format:       h.Card.Format.card(),
			RepeatWindow: h.Card.RepeatWindow,
			Log:          log,
		})
		if err != nil {
			return fmt.Errorf("open card reader: %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
	}
	if h.Fingerprint.Driver != driverNone {
		m, err := fingerprint.Open(fingerprint.Config{
			Port:         h.Fingerprint.Port,
			Baud:         h.Fingerprint.Baud,
			Address:      h.Fingerprint.Address,
			Password:     h.Fingerprint.Password,
			Capacity:     h.Fingerprint.Capacity,
			PollInterval: h.Fingerprint.PollInterval,
			Logger:       log,
		})
		if err != nil {
			return fmt.Errorf("open fingerprint module: %w", err)
		}
		d.addCloser("fingerprint", m)
		d.parts.Fingerprint = m
	}
	if h.Face.Driver != driverNone {
		m, err := face.Open(face.Config{
			Port:             h.Face.Port,
			Baud:             h.Face.Baud,
			VerifySeconds:    h.Face.VerifySeconds,
			PhotoEnrollMsgID: h.Face.PhotoEnrollMsgID,
			PhotoChunk:       h.Face.PhotoChunk,
			MaxPhoto:         h.Face.MaxPhoto,
			Logger:           log,
		})
		if err != nil {
			return fmt.Errorf("open face module: %w", err)
		}
		d.addCloser("face", m)
		d.parts.Face = m
	}
	dr, err := door.Open(door.Config{
		Driver: h.Door.Driver,
		Pulse:  h.Door.Pulse,
		GPIO: door.GPIOConfig{
			Chip:      h.Door.Chip,
			Relay:     h.Door.Line,
			ActiveLow: h.Door.ActiveLow,
			Sensor:    door.InputConfig{Line: h.Door.Sensor.Line, ActiveLow: h.Door.Sensor.ActiveLow},
			Button:    door.InputConfig{Line: h.Door.ExitButton.Line, ActiveLow: h.Door.ExitButton.ActiveLow},
			Debounce:  h.Door.Debounce,
		},
		LCUS: door.LCUSConfig{Port: h.Door.Port, Baud: h.Door.Baud, Channel: h.Door.Channel},
		Log:  log,
	})
	if err != nil {
		return fmt.Errorf("open door: %w", err)
	}
	d.addCloser("door", dr)
	d.parts.Door = dr
	return nil
}
