package wiegand

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal"
)

// A chip missing at Open (a GPIO expander not probed yet, a wrong chip) is
// in the state of lines lost later: Open succeeds, Health reports the
// fault, the Reader keeps trying, and Close still returns promptly. Only a
// configuration without lines is refused.
func TestFaultWiegandChipMissingAtStart(t *testing.T) {
	if _, err := Open(Config{D0: "5"}); err == nil {
		t.Fatal("a configuration without D1 was taken")
	}
	chip := filepath.Join(t.TempDir(), "gpiochip9")
	r, err := Open(Config{Chip: chip, D0: "5", D1: "6", Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatalf("chip missing at open: %v", err)
	}
	h, _ := r.Health()
	if h.OK || !errors.Is(h.Err, hal.ErrFault) {
		t.Fatalf("health with the chip missing %+v", h)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung with the chip missing")
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "Wiegand GPIO chip missing at start", "starts lost (fault shown), lines requested every second until they exist", "open ok, health fault")
}
