package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
)

// ScanGit scans every blob reachable from any ref of the repository at
// repo (the whole history, including files deleted since), each once,
// with the same container handling as [Scanner.ScanPaths]. It runs git
// locally (rev-list and cat-file; no network). Findings are reported
// under the blob's path, joined to repo, with [Finding.Commit] set to the
// oldest commit that has the blob.
//
// The blobs come from `git rev-list --objects --all` and are streamed by
// one `git cat-file --batch`, so a large history is never held in memory.
func (s *Scanner) ScanGit(ctx context.Context, repo string) (*Report, error) {
	blobs, err := s.listBlobs(ctx, repo)
	if err != nil {
		return nil, err
	}
	r := s.newRun(ctx)
	if err := r.catBlobs(repo, blobs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep := r.report()
	commits := map[string]string{}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if f.blob == "" {
			continue
		}
		c, ok := commits[f.blob]
		if !ok {
			c = s.introducedBy(ctx, repo, f.blob)
			commits[f.blob] = c
		}
		f.Commit = c
	}
	return rep, nil
}

type blobRef struct{ id, path string }

// listBlobs lists the blobs reachable from all refs with the first path
// each was seen at, leaving out paths gitleaks's allowlist excludes.
func (s *Scanner) listBlobs(ctx context.Context, repo string) ([]blobRef, error) {
	cmd := exec.CommandContext(ctx, s.git, "-C", repo, "rev-list", "--objects", "--all", "--filter=object:type=blob")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scan: git rev-list in %s: %v: %s", repo, err, strings.TrimSpace(stderr.String()))
	}
	var blobs []blobRef
	for line := range strings.SplitSeq(string(out), "\n") {
		id, p, ok := strings.Cut(line, " ")
		if !ok || p == "" { // commits have no path
			continue
		}
		if s.pathAllowed(p) {
			continue
		}
		blobs = append(blobs, blobRef{id: id, path: p})
	}
	return blobs, nil
}

// smallBlob is the size up to which a blob is read whole and scanned on
// a worker while cat-file streams the next; bigger ones are scanned as
// they stream.
const smallBlob = 4 << 20

// catBlobs streams blobs through `git cat-file --batch` and scans them.
func (r *run) catBlobs(repo string, blobs []blobRef) error {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.s.git, "-C", repo, "cat-file", "--batch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("scan: git cat-file: %w", err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, b := range blobs {
			fmt.Fprintln(w, b.id)
		}
		w.Flush()
		stdin.Close()
	}()

	work := make(chan func())
	var wg sync.WaitGroup
	for range r.s.workers {
		wg.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	br := bufio.NewReaderSize(stdout, 64<<10)
	readErr := func() error {
		for _, b := range blobs {
			hdr, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("scan: git cat-file: %w", err)
			}
			f := strings.Fields(hdr)
			if len(f) != 3 || f[1] != "blob" {
				return fmt.Errorf("scan: git cat-file: unexpected %q", strings.TrimSpace(hdr))
			}
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return fmt.Errorf("scan: git cat-file: %w", err)
			}
			e := entry{name: path.Join(repoName(repo), b.path), size: n, blob: b.id,
				b: &budget{left: r.s.limits.MaxTotal, max: r.s.limits.MaxTotal}}
			if n <= smallBlob {
				data := make([]byte, n)
				if _, err := io.ReadFull(br, data); err != nil {
					return fmt.Errorf("scan: git cat-file: %w", err)
				}
				rd := bytes.NewReader(data)
				e.r, e.ra = rd, rd
				select {
				case work <- func() { r.scanBlob(e) }:
				case <-ctx.Done():
					return ctx.Err()
				}
			} else {
				lr := io.LimitReader(br, n)
				e.r = lr
				r.scanBlob(e)
				if _, err := io.Copy(io.Discard, lr); err != nil {
					return fmt.Errorf("scan: git cat-file: %w", err)
				}
			}
			if _, err := br.Discard(1); err != nil { // the LF after each object
				return fmt.Errorf("scan: git cat-file: %w", err)
			}
		}
		return nil
	}()
	close(work)
	wg.Wait()
	if readErr != nil {
		cancel()
		cmd.Wait()
		return readErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("scan: git cat-file: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (r *run) scanBlob(e entry) {
	err := r.scanEntry(e)
	if err != nil && !errors.Is(err, errRefused) && !errors.Is(err, errReported) && r.ctx.Err() == nil {
		r.skip(e.name, "could not read: "+err.Error(), false)
	}
}

// repoName is the prefix for paths in a repository: "" for ".".
func repoName(repo string) string {
	if repo == "." || repo == "./" {
		return ""
	}
	return strings.TrimSuffix(repo, "/")
}

// introducedBy returns the oldest commit, on any ref, that has the blob;
// empty when git cannot tell.
func (s *Scanner) introducedBy(ctx context.Context, repo, blob string) string {
	out, err := exec.CommandContext(ctx, s.git, "-C", repo, "log", "--all", "--format=%H", "--find-object="+blob).Output()
	if err != nil {
		return ""
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
