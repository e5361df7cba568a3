package auditlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFullDisk: on a full disk (/dev/full answers every write with
// ENOSPC) the queue fails, counts every lost line and reports it once.
func TestFullDisk(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer f.Close()
	reports := make(chan error, 10)
	q := New(f, 16, func(err error) { reports <- err })
	for i := 0; i < 5; i++ {
		if _, err := q.Write([]byte("line\n")); err != nil {
			t.Fatalf("Write %d: %v (must queue, not fail the caller)", i, err)
		}
	}
	if err := q.Close(0); err == nil {
		t.Error("Close after lost lines: nil")
	}
	if n := q.Failures(); n != 5 {
		t.Errorf("Failures = %d, want 5", n)
	}
	if err := q.Err(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Err = %v, want ENOSPC", err)
	}
	if err := <-reports; !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("reported %v, want ENOSPC", err)
	}
}

// stalled is a destination that blocks until released, like a terminal
// nobody reads.
type stalled struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (s *stalled) Write(p []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// TestStalledDestination: a destination that stops reading never blocks
// Write; once the queue is full lines are dropped and counted and Err says
// so; when the destination reads again the queue drains and recovers.
func TestStalledDestination(t *testing.T) {
	s := &stalled{release: make(chan struct{})}
	q := New(s, 8, nil)
	dropped := 0
	for i := 0; i < 20; i++ { // bounded: 8 queued, 1 in the writer, the rest dropped
		if _, err := q.Write([]byte(fmt.Sprintf("%d\n", i))); errors.Is(err, ErrFull) {
			dropped++
		}
	}
	if dropped == 0 || q.Failures() != uint64(dropped) || !errors.Is(q.Err(), ErrFull) {
		t.Fatalf("dropped %d, Failures %d, Err %v", dropped, q.Failures(), q.Err())
	}
	close(s.release)
	q.Write([]byte("after\n"))
	if err := q.Close(0); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("Close = %v, want the lost lines reported", err)
	}
	if got, want := strings.Count(s.buf.String(), "\n"), 21-int(q.Failures()); got != want {
		t.Errorf("destination got %d lines, want %d (21 written, %d lost)", got, want, q.Failures())
	}
}

// TestCloseWritesEverything: Close returns only when every queued line was
// written, in order.
func TestCloseWritesEverything(t *testing.T) {
	var buf bytes.Buffer
	q := New(&buf, 0, nil)
	var want strings.Builder
	for i := 0; i < 1000; i++ {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		q.Write([]byte(line))
	}
	if err := q.Close(0); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want.String() {
		t.Error("lines lost or reordered")
	}
	if _, err := q.Write([]byte("late\n")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
}

// TestCloseTimeout: Close gives up on a destination that never reads.
func TestCloseTimeout(t *testing.T) {
	s := &stalled{release: make(chan struct{})}
	defer close(s.release)
	q := New(s, 4, nil)
	q.Write([]byte("x\n"))
	q.Write([]byte("y\n"))
	if err := q.Close(10 * time.Millisecond); err == nil {
		t.Error("Close on a stalled destination: nil")
	}
}
