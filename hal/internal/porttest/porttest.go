// Package porttest holds the test every serial driver in hal shares: the
// one open path (serialport.Open), where a device missing when the driver
// is opened is in the state of one unplugged later. It is imported by
// tests only.
//
// Import rule: it imports only hal and hal/sim.
package porttest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"termagent/hal"
	"termagent/hal/sim"
)

// Deadline bounds each wait of MissingAtOpen; it catches hangs and asserts
// nothing about speed.
const Deadline = 20 * time.Second

// Driver is what MissingAtOpen checks: a driver that reports its port's
// health and closes.
type Driver interface {
	hal.HealthReporter
	Close() error
}

// MissingAtOpen checks a driver opened on a path where no device is yet:
// open must succeed and the driver's Health must say lost, with an error
// wrapping hal.ErrFault that names the path; once dev is attached there,
// Health must turn OK, and use (the driver at work: a read, a command, a
// switch) must succeed. The driver is closed at the end of the test.
func MissingAtOpen[D Driver](t *testing.T, open func(path string) (D, error), dev sim.Device, use func(ctx context.Context, d D) error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "not-yet")
	d, err := open(path)
	if err != nil {
		t.Fatalf("open on a missing port: %v, want a driver in the lost state", err)
	}
	t.Cleanup(func() { d.Close() })
	h, changed := d.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) || !strings.Contains(h.Err.Error(), path) {
		t.Fatalf("health: %+v, want lost with hal.ErrFault naming %s", h, path)
	}
	plug, err := sim.Attach(dev, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plug.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	for !h.OK {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("the port was not reopened after the device appeared")
		}
		h, changed = d.Health()
	}
	if err := use(ctx, d); err != nil {
		t.Fatalf("use after the device appeared: %v", err)
	}
}
