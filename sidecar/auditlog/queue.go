// Package auditlog writes audit lines through a bounded asynchronous
// queue, so a slow or failing destination (a stalled stderr reader, a full
// disk) neither blocks the requests that produce the lines nor goes
// unnoticed.
//
// # Use
//
// Wrap each destination in a [Queue] and give the queue to the logger
// (slog.NewJSONHandler(q, nil)): [Queue.Write] copies the line and returns
// at once. [Queue.Err] says whether every line so far was written (a
// component that must not act unaudited, like the proxy, refuses work
// while it is not nil), [Queue.Failures] counts the lines lost, and
// [Queue.Close] writes what is queued before it returns.
package auditlog

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSize is the number of lines a [Queue] holds when New is given
// zero: about 4 MB of typical audit lines.
const DefaultSize = 8192

// ErrFull is the state of a queue that had to drop a line because its
// destination did not keep up.
var ErrFull = errors.New("auditlog: queue full, audit lines dropped")

// ErrClosed is returned by Write after Close; such lines are the caller's
// to report, not counted in Failures.
var ErrClosed = errors.New("auditlog: queue closed")

// Queue is a bounded queue of lines in front of one destination. It is
// safe for concurrent use.
type Queue struct {
	w      io.Writer
	lines  chan []byte
	done   chan struct{}
	report func(error) // told when the queue starts and stops failing

	mu     sync.Mutex // guards closed, err
	closed bool
	err    error // the current failure, nil while healthy

	failures atomic.Uint64
}

// New starts a queue of size lines (zero means DefaultSize) writing to w.
// report, when not nil, is called (from the writing goroutine or from
// Write) with the failure when the queue starts failing and with nil when
// it recovers: a place to log it on another destination.
func New(w io.Writer, size int, report func(error)) *Queue {
	if size <= 0 {
		size = DefaultSize
	}
	q := &Queue{w: w, lines: make(chan []byte, size), done: make(chan struct{}), report: report}
	go q.run()
	return q
}

// Write queues a copy of p (one audit line) and returns at once. When the
// queue is full the line is dropped, counted, and the queue fails with
// ErrFull until its destination catches up.
func (q *Queue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, ErrClosed // the caller is told; the queue's record is closed
	}
	select {
	case q.lines <- append([]byte(nil), p...):
		return len(p), nil
	default:
		q.failures.Add(1)
		q.setLocked(ErrFull)
		return 0, ErrFull
	}
}

func (q *Queue) run() {
	defer close(q.done)
	for line := range q.lines {
		_, err := q.w.Write(line)
		if err != nil {
			q.failures.Add(1)
			q.set(fmt.Errorf("auditlog: write: %w", err))
			continue
		}
		// Healthy again once a line is written and there is room.
		if len(q.lines) < cap(q.lines)/2 {
			q.set(nil)
		}
	}
}

func (q *Queue) set(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.setLocked(err)
}

func (q *Queue) setLocked(err error) {
	if (q.err == nil) == (err == nil) {
		if err != nil {
			q.err = err
		}
		return
	}
	q.err = err
	if q.report != nil {
		go q.report(err) // never under q.mu, never blocking a writer
	}
}

// Err is nil while every line was written, else the latest failure.
func (q *Queue) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Failures is the number of lines lost so far (dropped or failed).
func (q *Queue) Failures() uint64 { return q.failures.Load() }

// Close stops accepting lines and writes every queued one, waiting at most
// timeout (zero: no limit). It reports the lines lost, if any.
func (q *Queue) Close(timeout time.Duration) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.lines)
	}
	q.mu.Unlock()
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-q.done:
		case <-t.C:
			return fmt.Errorf("auditlog: %d lines still queued after %v", len(q.lines), timeout)
		}
	} else {
		<-q.done
	}
	if n := q.failures.Load(); n > 0 {
		return fmt.Errorf("auditlog: %d lines lost", n)
	}
	return nil
}
