// Package gpiofind finds GPIO chips and lines on the Linux GPIO character
// device by the names configuration uses: a chip by name (gpiochip0),
// label (pinctrl-bcm2711) or path (/dev/gpiochip0); a line by name
// (GPIO17) or offset ("17"). Chip numbers move between kernels (Raspberry
// Pi 5's RP1 moved from gpiochip4 to gpiochip0), names and labels do not.
//
// Import rule: gpiofind imports hal and periph.io only.
package gpiofind

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/host/v3/gpioioctl"

	"termagent/hal"
)

var initOnce = sync.OnceValue(func() error {
	_, err := driverreg.Init()
	return err
})

// Chip returns the chip named want (zero: the first chip). No GPIO
// character device, or no such chip, is an error wrapping hal.ErrFault.
func Chip(want string) (*gpioioctl.GPIOChip, error) {
	if err := initOnce(); err != nil {
		return nil, fmt.Errorf("gpio: init: %w: %w", hal.ErrFault, err)
	}
	chips := gpioioctl.Chips
	if len(chips) == 0 {
		return nil, fmt.Errorf("gpio: no GPIO character device (/dev/gpiochip*): %w", hal.ErrFault)
	}
	if want == "" {
		return chips[0], nil
	}
	for _, c := range chips {
		if c.Name() == want || c.Label() == want || c.Path() == want || filepath.Base(c.Path()) == want {
			return c, nil
		}
	}
	return nil, fmt.Errorf("gpio: no GPIO chip %q: %w", want, hal.ErrFault)
}

// Line returns the line of chip named want, or at offset want.
func Line(chip *gpioioctl.GPIOChip, want string) (*gpioioctl.GPIOLine, error) {
	if l := chip.ByName(want); l != nil {
		return l, nil
	}
	if n, err := strconv.Atoi(want); err == nil && n >= 0 && n < chip.LineCount() {
		return chip.ByNumber(n), nil
	}
	return nil, fmt.Errorf("gpio: no line %q on %s: %w", want, chip.Name(), hal.ErrFault)
}
