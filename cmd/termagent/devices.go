package main

import (
	"fmt"

	"termagent/agent"
	"termagent/hal"
	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/evdev"
	"termagent/hal/face"
	"termagent/hal/feedback"
	"termagent/hal/fingerprint"
	"termagent/hal/keypad"
	"termagent/hal/wiegand"
)

// drivers lists each module's drivers by their name in the file; "none"
// (every module's default) means the module is not fitted. A new driver is
// its name here and its Open call in openDevices; its keys are the yaml
// tags of its Config.
var drivers = map[string][]string{
	"card":        {driverNone, string(card.ProtoRDM6300), string(card.ProtoLine), string(card.ProtoGwiot7941), driverEvdev, driverWiegand},
	"fingerprint": {driverNone, "r30x"},
	"face":        {driverNone, "fm22x"},
	"door":        {driverNone, door.DriverGPIO, door.DriverLCUS},
	"keypad":      {driverNone, driverSerial, driverEvdev, driverWiegand},
	"door_inputs": {driverNone, driverEvdev},
}

// serialCard reports whether the card driver reads a serial port.
func serialCard(driver card.Protocol) bool {
	return driver != driverNone && driver != driverEvdev && driver != driverWiegand
}

// sameWiegandLines reports whether the card reader and the keypad are one
// Wiegand reader (one set of D0/D1 lines).
func (h HALConfig) sameWiegandLines() bool {
	c, k := h.Card.Wiegand, h.Keypad.Wiegand
	return h.Card.Driver == driverWiegand && h.Keypad.Driver == driverWiegand &&
		c.Chip == k.Chip && c.D0 == k.D0 && c.D1 == k.D1
}

// openDevices builds the configured drivers and hands them to the agent. A
// driver that is "none" leaves the part nil (the terminal has no such
// module); the door "none" still records the logical lock state. A device
// missing at start is not an error: its driver reports it lost (the agent
// shows it faulty and sends the event) and reopens it with its own backoff,
// exactly as when it is unplugged later (serial ports, input devices,
// Wiegand D0/D1 lines). Only a bad configuration, or a relay or feedback
// GPIO line that does not exist (parts of the board), fails here.
func (d *daemon) openDevices() error {
	h := d.cfg.HAL
	var wr *wiegand.Reader // the Wiegand reader, when the card reader is one
	switch {
	case h.Card.Driver == driverEvdev:
		ec := h.Card.Evdev
		ec.Line, ec.Format, ec.Logger = h.Card.Line, h.Card.Format, d.log
		r, err := evdev.OpenCardReader(ec)
		if err != nil {
			return fmt.Errorf("open card reader (evdev): %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
	case h.Card.Driver == driverWiegand:
		wc := h.Card.Wiegand
		wc.Format, wc.Logger = h.Card.Format, d.log
		r, err := wiegand.Open(wc)
		if err != nil {
			return fmt.Errorf("open card reader (wiegand): %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
		wr = r
	case h.Card.Driver != driverNone:
		cc := h.Card.Config
		cc.Logger = d.log
		r, err := card.Open(cc)
		if err != nil {
			return fmt.Errorf("open card reader: %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
	}
	if err := d.openKeypad(wr); err != nil {
		return err
	}
	if h.Fingerprint.Driver != driverNone {
		fc := h.Fingerprint.Config
		fc.Logger = d.log
		m, err := fingerprint.Open(fc)
		if err != nil {
			return fmt.Errorf("open fingerprint module: %w", err)
		}
		d.addCloser("fingerprint", m)
		d.parts.Fingerprint = m
	}
	if h.Face.Driver != driverNone {
		fc := h.Face.Config
		fc.Logger = d.log
		m, err := face.Open(fc)
		if err != nil {
			return fmt.Errorf("open face module: %w", err)
		}
		d.addCloser("face", m)
		d.parts.Face = m
	}
	if h.DoorInputs.Driver == driverEvdev {
		ic := h.DoorInputs.DoorConfig
		ic.Logger = d.log
		in, err := evdev.OpenDoorInputs(ic)
		if err != nil {
			return fmt.Errorf("open door inputs: %w", err)
		}
		d.addCloser("door inputs", in)
		d.parts.DoorInputs = in
	}
	for _, o := range []struct {
		name string
		cfg  OutputConfig
		part *agent.FeedbackOutput
	}{{"buzzer", h.Feedback.Buzzer, &d.parts.Buzzer}, {"green", h.Feedback.Green, &d.parts.Green}, {"red", h.Feedback.Red, &d.parts.Red}} {
		if o.cfg.Line == "" {
			continue // not wired: the part stays nil
		}
		out, err := feedback.Open(feedback.Config{Name: o.name, Chip: o.cfg.Chip, Line: o.cfg.Line, ActiveLow: o.cfg.ActiveLow, Logger: d.log})
		if err != nil {
			return fmt.Errorf("open %s output: %w", o.name, err)
		}
		d.addCloser(o.name, out)
		*o.part = out
	}
	dc := h.Door
	dc.Logger = d.log
	dr, err := door.Open(dc)
	if err != nil {
		return fmt.Errorf("open door: %w", err)
	}
	d.addCloser("door", dr)
	d.parts.Door = dr
	return nil
}

// openKeypad opens hal.keypad; wr is the card reader when it is a Wiegand
// reader, which is also the keypad when both use the same lines.
func (d *daemon) openKeypad(wr *wiegand.Reader) error {
	h := d.cfg.HAL
	var kp hal.Keypad
	switch h.Keypad.Driver {
	case driverNone:
		return nil
	case driverSerial:
		kc := h.Keypad.Config
		kc.Logger = d.log
		k, err := keypad.Open(kc)
		if err != nil {
			return fmt.Errorf("open keypad: %w", err)
		}
		d.addCloser("keypad", k)
		kp = k
	case driverEvdev:
		ec := h.Keypad.Evdev
		ec.Logger = d.log
		k, err := evdev.OpenKeypad(ec)
		if err != nil {
			return fmt.Errorf("open keypad (evdev): %w", err)
		}
		d.addCloser("keypad", k)
		kp = k
	case driverWiegand:
		if wr != nil && h.sameWiegandLines() {
			kp = wr // one reader: cards and keys; closed as the card reader
			break
		}
		wc := h.Keypad.Wiegand
		wc.Logger = d.log
		k, err := wiegand.Open(wc)
		if err != nil {
			return fmt.Errorf("open keypad (wiegand): %w", err)
		}
		d.addCloser("keypad", k)
		kp = k
	}
	d.parts.Keypad = kp
	return nil
}
