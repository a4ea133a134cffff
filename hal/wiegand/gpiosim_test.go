package wiegand

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"termagent/hal/sim"
)

// gpioSim is a two-line chip made by the kernel's gpio-sim through
// configfs: a real /dev/gpiochipN whose input levels the test sets through
// sysfs, so CdevLines meets the real GPIO character device. It needs
// CONFIG_GPIO_SIM, configfs and root; the test skips without them (this
// workplace's VM has no GPIO at all; the QEMU system test has).
type gpioSim struct {
	dir  string // configfs directory
	sys  string // /sys/devices/platform/<dev_name>/<chip_name>
	chip string // /dev/gpiochipN
}

func newGPIOSim(t *testing.T) *gpioSim {
	t.Helper()
	root := "/sys/kernel/config/gpio-sim"
	if _, err := os.Stat(root); err != nil {
		t.Skipf("no gpio-sim here (%v): the real GPIO interface is tested where it exists", err)
	}
	g := &gpioSim{dir: filepath.Join(root, fmt.Sprintf("termagent-wiegand-%d", os.Getpid()))}
	write := func(path, v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		t.Skipf("gpio-sim: %v (needs root)", err)
	}
	bank := filepath.Join(g.dir, "gpio-bank0")
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(g.dir, "live"), []byte("0"), 0)
		os.Remove(bank)
		os.Remove(g.dir)
	})
	if err := os.Mkdir(bank, 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(bank, "num_lines"), "2")
	write(filepath.Join(g.dir, "live"), "1")
	dev, err := os.ReadFile(filepath.Join(g.dir, "dev_name"))
	if err != nil {
		t.Fatal(err)
	}
	chip, err := os.ReadFile(filepath.Join(bank, "chip_name"))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(chip))
	g.sys = filepath.Join("/sys/devices/platform", strings.TrimSpace(string(dev)), name)
	g.chip = filepath.Join("/dev", name)
	return g
}

// pulse pulls line low and back high: one falling edge.
func (g *gpioSim) pulse(t *testing.T, line int) {
	t.Helper()
	pull := filepath.Join(g.sys, fmt.Sprintf("sim_gpio%d", line), "pull")
	for _, v := range []string{"pull-down", "pull-up"} {
		if err := os.WriteFile(pull, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReaderOnGPIOSim(t *testing.T) {
	g := newGPIOSim(t)
	lines, err := OpenCdev(g.chip, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A generous gap: a loaded machine may pause between two pulses.
	r, err := New(Config{D0: "0", D1: "1", Gap: 250 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))}, lines)
	if err != nil {
		lines.Close()
		t.Fatal(err)
	}
	defer r.Close()
	bits, err := sim.WiegandCard(26, 0x63E9AE)
	if err != nil {
		t.Fatal(err)
	}
	for _, one := range bits {
		line := 0
		if one {
			line = 1
		}
		g.pulse(t, line)
		time.Sleep(time.Millisecond) // the bit period
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.ReadCard(ctx)
	if err != nil || c.Number != "0006547886" {
		t.Fatalf("card %+v %v (stats %+v)", c, err, r.Stats())
	}
}
