package main

import (
	"fmt"

	"termagent/hal/card"
)

// openDevices opens the configured drivers and hands them to the agent. A
// driver that is "none" leaves the part nil (the terminal has no such
// module).
func (d *daemon) openDevices() error {
	h := d.cfg.HAL
	if h.Card.Driver != driverNone {
		r, err := card.Open(card.Config{
			Port:         h.Card.Port,
			Protocol:     card.Protocol(h.Card.Driver),
			Baud:         h.Card.Baud,
			Line:         card.Line{Hex: h.Card.Line.Hex, MinDigits: h.Card.Line.MinDigits, MaxDigits: h.Card.Line.MaxDigits},
			Format:       h.Card.Format.card(),
			RepeatWindow: h.Card.RepeatWindow,
			Log:          d.log,
		})
		if err != nil {
			return fmt.Errorf("open card reader (hal.card): %w", err)
		}
		d.addCloser("card", r)
		d.parts.Card = r
	}
	return nil
}
