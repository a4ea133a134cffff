// Package faults is what termserver does wrong on purpose, to test
// terminals: refused uploads, late replies, dropped connections, a network
// cut. Config is the setting (the zero value injects nothing); Injector
// holds the one in force and draws which uploads fail.
//
// Import rule: a leaf of cmd/termserver; it imports nothing of the project.
package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInvalid means a fault setting is out of range or unreadable; the
// message names the setting.
var ErrInvalid = errors.New("faults: invalid fault setting")

// Config is what the server does wrong on purpose, to test terminals. The
// zero value injects nothing.
type Config struct {
	// FailUploads is the fraction (0..1) of upload_access_info requests
	// answered code -1 without storing the record.
	FailUploads float64
	// Delay is added before every response the server sends to a
	// terminal's request.
	Delay time.Duration
	// DropEvery closes a terminal's connection after every DropEvery
	// requests received on it: the DropEvery-th request is carried out
	// (an upload is stored) but never answered, the case of a record that
	// arrived but whose acknowledgement was lost. 0 means never.
	DropEvery int
	// Refuse closes every terminal connection as soon as it is accepted,
	// and setting it closes those connected: a network cut as terminals
	// see it, until it is turned off.
	Refuse bool
}

// Validate reports a clear error for an impossible setting.
func (f Config) Validate() error {
	if f.FailUploads < 0 || f.FailUploads > 1 || f.FailUploads != f.FailUploads {
		return fmt.Errorf("fail fraction %v: %w", f.FailUploads, ErrInvalid)
	}
	if f.Delay < 0 || f.Delay > time.Minute {
		return fmt.Errorf("delay %v not in 0..1m: %w", f.Delay, ErrInvalid)
	}
	if f.DropEvery < 0 {
		return fmt.Errorf("drop every %d: %w", f.DropEvery, ErrInvalid)
	}
	return nil
}

// String formats f as the query the admin endpoint accepts.
func (f Config) String() string {
	return fmt.Sprintf("fail=%g delay=%s drop_every=%d refuse=%t", f.FailUploads, f.Delay, f.DropEvery, f.Refuse)
}

// Values encodes f as URL query values (see Parse).
func (f Config) Values() url.Values {
	v := url.Values{}
	v.Set("fail", strconv.FormatFloat(f.FailUploads, 'g', -1, 64))
	v.Set("delay", f.Delay.String())
	v.Set("drop_every", strconv.Itoa(f.DropEvery))
	v.Set("refuse", strconv.FormatBool(f.Refuse))
	return v
}

// Parse reads fail, delay, drop_every and refuse from v; absent keys keep
// base's value. The result is valid (see Validate).
func Parse(base Config, v url.Values) (Config, error) {
	f := base
	if s := v.Get("fail"); s != "" {
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return base, fmt.Errorf("fail %q: %w", s, ErrInvalid)
		}
		f.FailUploads = x
	}
	if s := v.Get("delay"); s != "" {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("delay %q: %w", s, ErrInvalid)
		}
		f.Delay = d
	}
	if s := v.Get("drop_every"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("drop_every %q: %w", s, ErrInvalid)
		}
		f.DropEvery = n
	}
	if s := v.Get("refuse"); s != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("refuse %q: %w", s, ErrInvalid)
		}
		f.Refuse = b
	}
	if err := f.Validate(); err != nil {
		return base, err
	}
	return f, nil
}

// Injector holds the Config in force and the random source that decides
// which uploads fail. Safe for concurrent use.
type Injector struct {
	mu  sync.Mutex
	f   Config
	rnd *rand.Rand
}

// NewInjector returns an Injector starting with f (assumed valid); seed
// seeds the draw of failed uploads, 0 picks a random seed.
func NewInjector(f Config, seed uint64) *Injector {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Injector{f: f, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Get returns the Config in force.
func (s *Injector) Get() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// Set puts f in force; it reports ErrInvalid (and changes nothing) when f
// does not pass Validate.
func (s *Injector) Set(f Config) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
	return nil
}

// FailUpload draws whether the next upload is answered -1.
func (s *Injector) FailUpload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.FailUploads <= 0 {
		return false
	}
	return s.rnd.Float64() < s.f.FailUploads
}
