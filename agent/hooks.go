package agent

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// maxHookOutput bounds how much of a hook's output is kept for the error
// message and the log, in bytes.
const maxHookOutput = 512

// runHook runs program directly (no shell) with args, bounded by timeout,
// and returns an error naming the program and carrying the start of its
// output when it fails or exits non-zero. Peer-supplied values are only
// ever passed as args, so they are never interpreted by a shell.
func runHook(ctx context.Context, timeout time.Duration, program string, args ...string) error {
	if program == "" {
		return fmt.Errorf("%w: no hook configured", ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	out := &limitedBuffer{max: maxHookOutput}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("hook %s: timed out after %v", program, timeout)
		}
		if msg != "" {
			return fmt.Errorf("hook %s: %w: %s", program, err, msg)
		}
		return fmt.Errorf("hook %s: %w", program, err)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and discards the
// rest (so a chatty hook cannot grow memory).
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
