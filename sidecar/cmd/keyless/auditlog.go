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
)

// auditLogFile is the audit log in the data directory (0600, JSON lines,
// appended).
const auditLogFile = "audit.log"

// openAudit returns the audit logger: JSON lines to stderr and, when path
// is not empty, appended to the file at path (created 0600; an existing
// file readable by others is made 0600, since audit lines name users and
// apps). close flushes nothing (every line is one write) but closes the
// file; call it after the last component that logs has stopped.
func openAudit(stderr io.Writer, path string) (log *slog.Logger, close func() error, err error) {
	if path == "" {
		return slog.New(slog.NewJSONHandler(stderr, nil)), func() error { return nil }, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, nil, err
	}
	fw := &fanout{ws: []io.Writer{stderr, f}}
	return slog.New(slog.NewJSONHandler(fw, nil)), func() error { return fw.closeFile(f) }, nil
}

// fanout writes every line to each writer. Unlike io.MultiWriter it goes
// on past a failing writer (a closed terminal must not stop the audit
// file) and reports the first error; after close, lines go to the
// remaining writers only (a late line from a goroutine still stopping).
type fanout struct {
	mu sync.Mutex
	ws []io.Writer
}

func (m *fanout) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first error
	for _, w := range m.ws {
		if _, err := w.Write(p); err != nil && first == nil {
			first = err
		}
	}
	return len(p), first
}

func (m *fanout) closeFile(f *os.File) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.ws {
		if w == f {
			m.ws = append(m.ws[:i:i], m.ws[i+1:]...)
			return errors.Join(f.Sync(), f.Close())
		}
	}
	return nil
}
