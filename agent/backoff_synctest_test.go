package agent_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"termagent/agent"
	"termagent/store"
)

// countingWriter counts log lines that contain a phrase.
type countingWriter struct {
	mu     sync.Mutex
	phrase []byte
	n      int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += bytes.Count(p, w.phrase)
	return len(p), nil
}

func (w *countingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// With the server unreachable, the link manager retries forever with
// exponential backoff and full jitter between 1 s and 60 s: in virtual
// time (testing/synctest), a few attempts in the first seconds, then about
// one every 30 s on average.
func TestLinkBackoffInVirtualTime(t *testing.T) {
	port, err := netListenerFactory{}.closedPort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		db, err := store.Open(context.Background(), filepath.Join(dir, "db"), store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		w := &countingWriter{phrase: []byte("connect failed")}
		a, err := agent.New(agent.Config{
			Link:   agent.LinkConfig{ServerAddress: "127.0.0.1:" + strconv.Itoa(port), BackoffMin: time.Second, BackoffMax: time.Minute},
			Logger: zerolog.New(w),
		}, agent.Parts{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()

		time.Sleep(3 * time.Second) // virtual: the fake clock jumps
		synctest.Wait()
		early := w.count()
		// Ceilings 1+2+4 s: at least the first attempt, at most a handful.
		if early < 1 || early > 6 {
			t.Errorf("%d attempts in the first 3 s, want 1..6", early)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		total := w.count()
		// After the ceiling reaches 60 s the mean wait is 30 s: about 60
		// attempts in 30 minutes; far fewer means no retry, far more
		// means no backoff.
		t.Logf("%d attempts in the first 3 s, %d in 30 min", early, total)
		if total < 30 || total > 150 {
			t.Errorf("%d attempts in 30 min, want about 60", total)
		}
		if st := a.Status(ctx); st.Link != agent.LinkDown || st.LastError == "" {
			t.Errorf("status %s %q", st.Link, st.LastError)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
