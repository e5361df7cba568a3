package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Follow reads the lines appended to the file at path from offset on, as
// `tail -f` does, until ctx ends (then it returns nil). It calls fn for
// each well-formed line and bad for each malformed one (bad may be nil).
// A line is handled only once its newline is written, so a record being
// written is never read half.
//
// It looks for new data every poll (a file system notification would be
// faster, but polling works the same on every platform and inside
// containers). When the file is replaced (log rotation) or truncated, it
// reads the new file from its start.
func Follow(ctx context.Context, path string, offset int64, poll time.Duration, fn func(Line), bad func()) error {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		// Read everything there is now.
		for {
			n, rerr := f.Read(buf)
			pending = append(pending, buf[:n]...)
			offset += int64(n)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				if l, perr := Parse(pending[:i]); perr == nil {
					l.Raw = append([]byte(nil), l.Raw...)
					fn(l)
				} else if len(bytes.TrimSpace(pending[:i])) > 0 && bad != nil {
					bad()
				}
				pending = pending[i+1:]
			}
			if len(pending) > MaxLineBytes { // no newline in sight: drop it
				pending = nil
				if bad != nil {
					bad()
				}
			}
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					return rerr
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// Rotated or truncated: start over on the file now at path.
		cur, err := f.Stat()
		if err != nil {
			return err
		}
		now, err := os.Stat(path)
		if err != nil {
			continue // between a rename and the new file's creation
		}
		if !os.SameFile(cur, now) || now.Size() < offset {
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			f.Close()
			f, offset, pending = nf, 0, nil
		}
	}
}
