package main

import (
	"fmt"

	"termagent/hal/card"
	"termagent/hal/door"
	"termagent/hal/face"
	"termagent/hal/fingerprint"
)

// drivers lists each module's drivers by their name in the file; "none"
// (every module's default) means the module is not fitted. A new driver is
// its name here and its Open call in openDevices; its keys are the yaml
// tags of its Config.
var drivers = map[string][]string{
	"card":        {driverNone, string(card.ProtoRDM6300), string(card.ProtoLine), string(card.ProtoGwiot7941)},
	"fingerprint": {driverNone, "r30x"},
	"face":        {driverNone, "fm22x"},
	"door":        {driverNone, door.DriverGPIO, door.DriverLCUS},
}

// openDevices builds the configured drivers and hands them to the agent. A
// driver that is "none" leaves the part nil (the terminal has no such
// module); the door "none" still records the logical lock state. A device
// missing at start is not an error: its driver reports it lost (the agent
// shows it faulty and sends the event) and reopens it with its own backoff,
// exactly as when it is unplugged later. Only a bad configuration, or a
// GPIO line that does not exist, fails here.
func (d *daemon) openDevices() error {
	h := d.cfg.HAL
	if h.Card.Driver != driverNone {
		cc := h.Card
		cc.Logger = d.log
		r, err := card.Open(cc)
		if err != nil {
			return fmt.Errorf("open card reader: %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
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
