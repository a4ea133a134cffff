//go:build !linux

package protocol

import (
	"errors"
	"os"
)

// openAnonymous is O_TMPFILE on Linux; elsewhere the caller falls back to
// a named file unlinked at once.
func openAnonymous(string) (*os.File, error) { return nil, errors.ErrUnsupported }
