package sim

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openHost opens a slave the way a driver would, raw and blocking, without
// the serial library (sim must not import the drivers' packages).
func openHost(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
}

func TestPTYRawBothWays(t *testing.T) {
	p, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	host, err := openHost(p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	// Every byte value passes unchanged: no echo, no CR/LF mapping, no
	// signals, no line buffering.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	go p.Write(all)
	got := make([]byte, len(all))
	if _, err := io.ReadFull(host, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(all) {
		t.Fatalf("master→slave changed bytes: % X", got)
	}
	go host.Write(all)
	if _, err := io.ReadFull(p, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(all) {
		t.Fatalf("slave→master changed bytes: % X", got)
	}
}

func TestPTYCloseUnblocksRead(t *testing.T) {
	p, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 1))
		errc <- err
	}()
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// silent is a device that only waits.
type silent struct{ served chan struct{} }

func (s silent) Serve(ctx context.Context, port io.ReadWriter) error {
	s.served <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

func TestPlugUnplugReplug(t *testing.T) {
	link := filepath.Join(t.TempDir(), "dev")
	dev := silent{served: make(chan struct{}, 4)}
	pl, err := Attach(dev, link)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	<-dev.served
	first, err := os.Readlink(link)
	if err != nil || first != pl.TTY() || !pl.Plugged() {
		t.Fatalf("link %q (%v), tty %q", first, err, pl.TTY())
	}
	if err := pl.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) || pl.Plugged() || pl.TTY() != "" {
		t.Fatalf("after unplug: link %v, plugged %v", err, pl.Plugged())
	}
	if err := pl.Unplug(); err != nil {
		t.Fatalf("second unplug: %v", err)
	}
	if err := pl.Replug(); err != nil {
		t.Fatal(err)
	}
	<-dev.served
	second, err := os.Readlink(link)
	if err != nil || second != pl.TTY() {
		t.Fatalf("after replug: link %q (%v), tty %q", second, err, pl.TTY())
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pl.Replug(); err == nil {
		t.Fatal("replug after Close succeeded")
	}
	if _, err := Attach(dev, ""); err == nil {
		t.Fatal("attach without a link succeeded")
	}
}
