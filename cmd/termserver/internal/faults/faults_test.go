package faults_test

import (
	"errors"
	"testing"
	"time"

	"termagent/cmd/termserver/internal/faults"
)

func TestParse(t *testing.T) {
	f, err := faults.Parse(faults.Config{DropEvery: 3}, map[string][]string{"fail": {"0.25"}, "delay": {"150ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if f != (faults.Config{FailUploads: 0.25, Delay: 150 * time.Millisecond, DropEvery: 3}) {
		t.Fatalf("parsed %+v", f)
	}
	back, err := faults.Parse(faults.Config{}, f.Values())
	if err != nil || back != f {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, f)
	}
	for _, bad := range []map[string][]string{
		{"fail": {"x"}}, {"fail": {"-0.1"}}, {"fail": {"NaN"}}, {"delay": {"5"}}, {"delay": {"2h"}},
		{"drop_every": {"-1"}}, {"refuse": {"maybe"}},
	} {
		if _, err := faults.Parse(faults.Config{}, bad); !errors.Is(err, faults.ErrInvalid) {
			t.Errorf("faults.Parse(%v) = %v; want faults.ErrInvalid", bad, err)
		}
	}
}

func TestInjector_setRefusesInvalid(t *testing.T) {
	in := faults.NewInjector(faults.Config{DropEvery: 2}, 1)
	if err := in.Set(faults.Config{Delay: -time.Second}); !errors.Is(err, faults.ErrInvalid) {
		t.Fatalf("Set(delay -1s): %v; want ErrInvalid", err)
	}
	if got := in.Get(); got != (faults.Config{DropEvery: 2}) {
		t.Fatalf("after a refused Set: %+v; want the old setting", got)
	}
	if in.FailUpload() {
		t.Fatal("FailUpload with fail=0 drew a failure")
	}
	if err := in.Set(faults.Config{FailUploads: 1}); err != nil || !in.FailUpload() {
		t.Fatalf("Set(fail=1): %v; want every upload to fail", err)
	}
}
