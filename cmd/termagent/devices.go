package main

import (
	"context"
	"time"

	"termagent/hal"
	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
)

// probeTimeout bounds the probe of a module at start.
const probeTimeout = 5 * time.Second

// openDevices builds the configured drivers and hands them to the agent. A
// driver that is "none" leaves the part nil (the terminal has no such
// module); the door "none" still records the logical lock state. A module
// that is configured but cannot be opened at start does not stop the
// terminal: it is handed to the agent as a faulty module that is reopened
// with backoff (see retryOpen), so the link and the other modules work and
// the fault is reported.
func (d *daemon) openDevices(ctx context.Context) error {
	h := d.cfg.HAL
	log := d.log
	if h.Card.Driver != driverNone {
		cc := card.Config{
			Port:         h.Card.Port,
			Protocol:     card.Protocol(h.Card.Driver),
			Baud:         h.Card.Baud,
			Line:         card.Line{Hex: h.Card.Line.Hex, MinDigits: h.Card.Line.MinDigits, MaxDigits: h.Card.Line.MaxDigits},
			Format:       h.Card.Format.card(),
			RepeatWindow: h.Card.RepeatWindow,
			Log:          log,
		}
		r := newLazyCard(func(context.Context) (*card.Reader, error) { return card.Open(cc) }, d.backoff())
		d.report("card", r.open(ctx))
		d.addCloser("card", r)
		d.parts.Card = r
	}
	if h.Fingerprint.Driver != driverNone {
		fc := fingerprint.Config{
			Port:         h.Fingerprint.Port,
			Baud:         h.Fingerprint.Baud,
			Address:      h.Fingerprint.Address,
			Password:     h.Fingerprint.Password,
			Capacity:     h.Fingerprint.Capacity,
			PollInterval: h.Fingerprint.PollInterval,
			Logger:       log,
		}
		m := newLazyFinger(func(ctx context.Context) (*fingerprint.R30x, error) {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			return fingerprint.Open(ctx, fc)
		}, d.backoff())
		d.report("fingerprint", m.open(ctx))
		d.addCloser("fingerprint", m)
		d.parts.Fingerprint = m
		d.parts.FingerCapacity = m.capacity(ctx, h.Fingerprint.Capacity)
	}
	if h.Face.Driver != driverNone {
		fc := face.Config{
			Port:             h.Face.Port,
			Baud:             h.Face.Baud,
			VerifySeconds:    h.Face.VerifySeconds,
			PhotoEnrollMsgID: h.Face.PhotoEnrollMsgID,
			PhotoChunk:       h.Face.PhotoChunk,
			MaxPhoto:         h.Face.MaxPhoto,
			Logger:           log,
		}
		m := newLazyFace(func(ctx context.Context) (*face.FM22x, error) {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			return face.Open(ctx, fc)
		}, d.backoff())
		d.report("face", m.open(ctx))
		d.addCloser("face", m)
		d.parts.Face = m
	}

	dc := door.Config{
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
	}
	dr := newLazyDoor(func(context.Context) (hal.Door, error) { return door.Open(dc) }, d.backoff())
	d.report("door", dr.open(ctx))
	d.addCloser("door", dr)
	if h.Door.Driver == "gpio" {
		d.parts.Door = &lazyDoorInputs{dr}
	} else {
		d.parts.Door = dr
	}
	return nil
}

// backoff is the least time between two attempts to open a module that
// could not be opened (the agent's own probes back off further).
func (d *daemon) backoff() time.Duration { return d.cfg.Modules.RetryMin }

// report logs the outcome of a module's first open.
func (d *daemon) report(name string, err error) {
	if err != nil {
		d.log.Error().Err(err).Str(logModule, name).Msg("module not available at start; retrying in the background")
	}
}
