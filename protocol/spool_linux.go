//go:build linux

package protocol

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openAnonymous opens a file in dir that has no name at all (O_TMPFILE,
// 0600): no instant exists in which a killed process leaves it behind.
// Filesystems without O_TMPFILE fail it; the caller then falls back.
func openAnonymous(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, "(spool)")), nil
}
