package evdev_test

import (
	"context"
	"errors"
	"testing"

	"termagent/hal"
	"termagent/hal/evdev"
)

// The door's inputs as a gpio-keys device, from the simulator's FIFO.
func TestDoorInputsOnStream(t *testing.T) {
	dev := newInput(t, 0)
	c := config(t, dev, 0)
	in, err := evdev.OpenDoorInputs(evdev.DoorConfig{Device: c.Device, Backoff: c.Backoff, Log: c.Log})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := ctxT(t)
	if open, has := in.Open(); open || !has {
		t.Fatalf("at start: open %v, sensor %v", open, has)
	}
	if err := dev.SetDoor(true); err != nil {
		t.Fatal(err)
	}
	if got, err := in.NextInput(ctx); err != nil || got.Kind != hal.DoorSensor || !got.Active || got.At.IsZero() {
		t.Fatalf("door opened: %+v %v", got, err)
	}
	if open, _ := in.Open(); !open {
		t.Fatal("Open() false after the door opened")
	}
	steps := []func() error{
		func() error { return dev.Event(evdev.EvKey, evdev.Key1, 1) }, // not a door input: ignored
		func() error { return dev.SetDoor(true) },                     // no change: nothing
		func() error { return dev.PressExit() },
		func() error { return dev.SetDoor(false) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []hal.DoorInput{
		{Kind: hal.ExitButton, Active: true},
		{Kind: hal.ExitButton, Active: false},
		{Kind: hal.DoorSensor, Active: false},
	}
	for i, w := range want {
		got, err := in.NextInput(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != w.Kind || got.Active != w.Active {
			t.Fatalf("input %d: %+v, want %v active %v", i, got, w.Kind, w.Active)
		}
	}
	if open, _ := in.Open(); open {
		t.Fatal("Open() true after the door shut")
	}
	errc := make(chan error, 1)
	go func() { _, err := in.NextInput(context.Background()); errc <- err }()
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, hal.ErrClosed) {
		t.Fatalf("NextInput after Close: %v", err)
	}
	if err := in.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestDoorInputsConfig(t *testing.T) {
	dev := newInput(t, 0)
	if _, err := evdev.OpenDoorInputs(evdev.DoorConfig{Device: dev.Path(), Sensor: evdev.DoorInputCode{Type: evdev.EvMsc, Code: 4}}); err == nil {
		t.Fatal("EV_MSC door input accepted")
	}
	in, err := evdev.OpenDoorInputs(evdev.DoorConfig{Device: dev.Path(), NoSensor: true,
		Button: evdev.DoorInputCode{Type: evdev.EvKey, Code: evdev.KeyEnter}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, has := in.Open(); has {
		t.Fatal("a sensor without one wired")
	}
	if err := dev.SetDoor(true); err != nil { // no sensor: ignored
		t.Fatal(err)
	}
	if err := dev.Event(evdev.EvKey, evdev.KeyEnter, 1); err != nil {
		t.Fatal(err)
	}
	got, err := in.NextInput(ctxT(t))
	if err != nil || got.Kind != hal.ExitButton || !got.Active {
		t.Fatalf("button on KEY_ENTER: %+v %v", got, err)
	}
}
