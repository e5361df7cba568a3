package main

// The audit log file: keyless dev and serve (and keyless proxy with
// --audit-file) write every audit line to stderr, as before, and append it
// to DATA/audit.log, which `keyless audit` reads. Field names are in
// docs/audit.md.

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/auditlog"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

// auditLogFile is the audit log in the data directory (0600, JSON lines,
// appended).
const auditLogFile = "audit.log"

// openAudit returns the audit logger: JSON lines to stderr and, when path
// is not empty, appended to the file at path (created 0600; an existing
// file readable by others is made 0600, since audit lines name users and
// apps). close writes what is queued and closes the file; call it after the
// last component that logs has stopped. See [openAuditOut].
func openAudit(stderr io.Writer, path string) (log *slog.Logger, close func() error, err error) {
	out, err := openAuditOut(stderr, path)
	if err != nil {
		return nil, nil, err
	}
	// JSON lines as slog's JSON handler writes them; the proxy (keyless
	// dev) writes its decision lines through the same writer itself.
	return proxy.NewAuditLogger(out), out.Close, nil
}

// auditFlushTimeout bounds the wait for queued audit lines at close.
const auditFlushTimeout = 5 * time.Second

// auditOut is the audit destinations, each behind its own bounded
// asynchronous queue (auditlog.Queue), so a stalled stderr reader never
// blocks a request nor the file, and a full disk never blocks stderr. A
// destination that fails is reported on the other one, counted, and shown
// by Err (the proxy's /readyz and audit.on_failure).
type auditOut struct {
	stderr io.Writer
	qErr   *auditlog.Queue
	qFile  *auditlog.Queue // nil without a file
	file   *os.File

	mu     sync.RWMutex
	closed bool
}

func openAuditOut(stderr io.Writer, path string) (*auditOut, error) {
	return openAuditOutSize(stderr, path, auditlog.DefaultSize)
}

// openAuditOutSize is openAuditOut with queues of size lines.
func openAuditOutSize(stderr io.Writer, path string, size int) (*auditOut, error) {
	a := &auditOut{stderr: stderr}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, err
		}
		a.file = f
	}
	// Each queue reports its failures on the other destination.
	var errLog, fileLog *slog.Logger
	a.qErr = auditlog.New(stderr, size, func(err error) { reportAudit(fileLog, "stderr", err) })
	errLog = slog.New(slog.NewJSONHandler(a.qErr, nil))
	if a.file != nil {
		a.qFile = auditlog.New(a.file, size, func(err error) { reportAudit(errLog, path, err) })
		fileLog = slog.New(slog.NewJSONHandler(a.qFile, nil))
	}
	return a, nil
}

func reportAudit(log *slog.Logger, dest string, err error) {
	if log == nil {
		return
	}
	if err != nil {
		log.Error("audit.write_failed", "destination", dest, "err", err.Error())
	} else {
		log.Warn("audit.write_recovered", "destination", dest)
	}
}

// Write queues one line for every destination; it never blocks. After
// Close, lines go to stderr directly (a late line from a goroutine still
// stopping).
func (a *auditOut) Write(p []byte) (int, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return a.stderr.Write(p)
	}
	a.qErr.Write(p)
	if a.qFile != nil {
		a.qFile.Write(p)
	}
	return len(p), nil
}

// Err is nil while every audit line reached every destination.
func (a *auditOut) Err() error {
	if a.qFile != nil {
		if err := a.qFile.Err(); err != nil {
			return err
		}
	}
	return a.qErr.Err()
}

// Failures counts the audit lines a destination lost.
func (a *auditOut) Failures() uint64 {
	n := a.qErr.Failures()
	if a.qFile != nil {
		n += a.qFile.Failures()
	}
	return n
}

// Close writes what is queued (bounded by auditFlushTimeout) and closes
// the file. It reports the file's losses and errors; stderr's are counted
// in Failures.
func (a *auditOut) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.qErr.Close(auditFlushTimeout)
	if a.qFile == nil {
		return nil
	}
	return errors.Join(a.qFile.Close(auditFlushTimeout), a.file.Sync(), a.file.Close())
}
