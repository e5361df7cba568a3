package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ScanPaths scans files and directories (recursively), descending into
// archives. A path that does not exist is an error before anything is
// scanned; unreadable files met on the way are reported in
// [Report.Skipped]. Directories named .git are not entered: use
// [Scanner.ScanGit] for history.
func (s *Scanner) ScanPaths(ctx context.Context, paths []string) (*Report, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
	}
	r := s.newRun(ctx)
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for j := range jobs {
				r.scanFile(j)
			}
		})
	}
	var walkErr error
	for _, p := range paths {
		if err := r.walk(p, jobs); err != nil {
			walkErr = err
			break
		}
	}
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		return nil, walkErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.report(), nil
}

// job is one file on disk to scan: name is how it is reported, path
// where it is read (they differ for a symlink).
type job struct{ name, path string }

// walk sends root's files to jobs. Symlinks are followed only to files
// inside root: a link out of the tree (to /etc, to $HOME) is reported and
// left alone, and a link to a directory inside the tree is skipped, as
// the walk reaches that directory anyway (and a loop cannot form).
func (r *run) walk(root string, jobs chan<- job) error {
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if !info.IsDir() {
		return r.send(jobs, job{name: filepath.ToSlash(root), path: root})
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	realRoot, _ = filepath.Abs(realRoot)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		name := filepath.ToSlash(p)
		if err != nil {
			r.skip(name, "could not read: "+err.Error(), false)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			if p != root && (d.Name() == ".git" || r.s.pathAllowed(name)) {
				return fs.SkipDir
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				r.skip(name, "broken symlink: not followed", false)
				return nil
			}
			target, _ = filepath.Abs(target)
			if !within(realRoot, target) {
				r.skip(name, "symlink points outside the scanned root: not followed", false)
				return nil
			}
			if st, err := os.Stat(target); err == nil && st.Mode().IsRegular() {
				return r.send(jobs, job{name: name, path: target})
			}
			return nil
		case d.Type().IsRegular():
			if r.s.pathAllowed(name) {
				return nil
			}
			return r.send(jobs, job{name: name, path: p})
		}
		return nil // devices, sockets, pipes
	})
}

func (r *run) send(jobs chan<- job, j job) error {
	select {
	case jobs <- j:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// within reports whether path is root or below it; both are absolute
// and free of symlinks.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// scanFile scans one file from disk: random access is there for zip.
func (r *run) scanFile(j job) {
	f, err := os.Open(j.path)
	if err != nil {
		r.skip(j.name, "could not read: "+err.Error(), false)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		r.skip(j.name, "could not read: "+err.Error(), false)
		return
	}
	b := &budget{left: r.s.limits.MaxTotal, max: r.s.limits.MaxTotal}
	err = r.scanEntry(entry{name: j.name, r: f, ra: f, size: st.Size(), b: b})
	if err != nil && !errors.Is(err, errRefused) && !errors.Is(err, errReported) && r.ctx.Err() == nil {
		r.skip(j.name, "could not read: "+err.Error(), false)
	}
}

// ScanReader scans one stream (standard input, an upload) as if it were
// a file called name: the name's extension and the content's magic
// number decide how it is read. A zip is read into memory or a temporary
// file first, as zip needs random access.
func (s *Scanner) ScanReader(ctx context.Context, name string, rd io.Reader) (*Report, error) {
	r := s.newRun(ctx)
	b := &budget{left: s.limits.MaxTotal, max: s.limits.MaxTotal}
	err := r.scanEntry(entry{name: name, r: rd, size: -1, b: b})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_ = err // reported in Skipped
	return r.report(), nil
}
