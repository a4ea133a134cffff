package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults is what the server does wrong on purpose, to test terminals. The
// zero value injects nothing.
type Faults struct {
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
func (f Faults) Validate() error {
	if f.FailUploads < 0 || f.FailUploads > 1 || f.FailUploads != f.FailUploads {
		return fmt.Errorf("fail fraction %v: %w", f.FailUploads, ErrBadFaults)
	}
	if f.Delay < 0 || f.Delay > time.Minute {
		return fmt.Errorf("delay %v not in 0..1m: %w", f.Delay, ErrBadFaults)
	}
	if f.DropEvery < 0 {
		return fmt.Errorf("drop every %d: %w", f.DropEvery, ErrBadFaults)
	}
	return nil
}

// String formats f as the query the admin endpoint accepts.
func (f Faults) String() string {
	return fmt.Sprintf("fail=%g delay=%s drop_every=%d refuse=%t", f.FailUploads, f.Delay, f.DropEvery, f.Refuse)
}

// Values encodes f as URL query values (see ParseFaults).
func (f Faults) Values() url.Values {
	v := url.Values{}
	v.Set("fail", strconv.FormatFloat(f.FailUploads, 'g', -1, 64))
	v.Set("delay", f.Delay.String())
	v.Set("drop_every", strconv.Itoa(f.DropEvery))
	v.Set("refuse", strconv.FormatBool(f.Refuse))
	return v
}

// ParseFaults reads fail, delay, drop_every and refuse from v; absent keys keep
// base's value.
func ParseFaults(base Faults, v url.Values) (Faults, error) {
	f := base
	if s := v.Get("fail"); s != "" {
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return base, fmt.Errorf("fail %q: %w", s, ErrBadFaults)
		}
		f.FailUploads = x
	}
	if s := v.Get("delay"); s != "" {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("delay %q: %w", s, ErrBadFaults)
		}
		f.Delay = d
	}
	if s := v.Get("drop_every"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("drop_every %q: %w", s, ErrBadFaults)
		}
		f.DropEvery = n
	}
	if s := v.Get("refuse"); s != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return base, fmt.Errorf("refuse %q: %w", s, ErrBadFaults)
		}
		f.Refuse = b
	}
	if err := f.Validate(); err != nil {
		return base, err
	}
	return f, nil
}

// faultState holds the live Faults and the random source that decides
// which uploads fail. Safe for concurrent use.
type faultState struct {
	mu  sync.Mutex
	f   Faults
	rnd *rand.Rand
}

func newFaultState(f Faults, seed uint64) *faultState {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &faultState{f: f, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
}

// failUpload draws whether the next upload is answered -1.
func (s *faultState) failUpload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f.FailUploads <= 0 {
		return false
	}
	return s.rnd.Float64() < s.f.FailUploads
}
