package scan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zricethezav/gitleaks/v8/report"
)

// Chunking: text is scanned about chunkSize bytes at a time, cut after a
// newline when one comes within lineSlack bytes. Chunks are small (gitleaks
// reads 100 kB) because a rule's regex runs over a whole chunk whenever
// one of its keywords is in it. A line longer than that
// (minified JS) is cut mid-line, and the last overlap bytes are scanned
// again with the next chunk, so a secret and the keyword before it are
// never split; findings seen twice are merged by position.
const (
	chunkSize = 128 << 10
	lineSlack = 64 << 10
	overlap   = 4 << 10
)

// pos is a 1-based line and column.
type pos struct{ line, col int }

// advance returns the position just after text, which starts at p.
func (p pos) advance(text string) pos {
	nl := strings.Count(text, "\n")
	if nl == 0 {
		return pos{p.line, p.col + len(text)}
	}
	return pos{p.line + nl, len(text) - strings.LastIndexByte(text, '\n')}
}

// fileState carries what one file's chunks share: where findings are,
// so the overlap does not report them twice.
type fileState struct {
	name   string
	blob   string
	seen   map[string]int // rule@line:col -> index in found
	found  []Finding
	leases map[pos]bool
	once   map[string]bool
}

func (fs *fileState) add(f Finding) {
	key := fmt.Sprintf("%s@%d:%d", f.RuleID, f.Line, f.Column)
	if i, ok := fs.seen[key]; ok {
		// The same match seen in the overlap: keep the longer one, in
		// case the first was cut at the chunk's end.
		if len(f.Excerpt) > len(fs.found[i].Excerpt) {
			fs.found[i] = f
		}
		return
	}
	fs.seen[key] = len(fs.found)
	fs.found = append(fs.found, f)
}

// scanText scans rd as text, chunk by chunk, reading at most
// Limits.MaxFileSize bytes.
func (r *run) scanText(name, blob string, rd io.Reader) error {
	fs := &fileState{name: name, blob: blob, seen: map[string]int{}, leases: map[pos]bool{}, once: map[string]bool{}}
	// Findings made before a read error (a refused bomb, a corrupt
	// stream) are still reported.
	defer func() { r.addFindings(fs.found) }()
	limit := r.s.limits.MaxFileSize
	lr := &io.LimitedReader{R: rd, N: limit + 1}
	br := bufio.NewReaderSize(lr, lineSlack)
	buf := make([]byte, 0, overlap+chunkSize+lineSlack)
	at := pos{1, 1}
	var total int64
	var carry int // bytes at the start of buf repeated from the last chunk
	for {
		n, err := io.ReadFull(br, buf[carry:carry+chunkSize])
		buf = buf[:carry+n]
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return err
		}
		cleanCut := eof
		if !eof && buf[len(buf)-1] != '\n' {
			// Extend to the end of the line, within lineSlack.
			line, err := br.ReadSlice('\n')
			buf = append(buf, line...)
			switch {
			case err == nil:
				cleanCut = true
			case err == io.EOF:
				eof, cleanCut = true, true
			case errors.Is(err, bufio.ErrBufferFull):
			default:
				return err
			}
		} else if !eof {
			cleanCut = true
		}
		text := string(buf)
		total += int64(len(text) - carry)
		if total > limit {
			over := int(total - limit)
			text = text[:len(text)-over]
			total = limit
			r.skip(name, fmt.Sprintf("larger than %s: scanned the first %s only", size(limit), size(limit)), false)
			eof, cleanCut = true, true
		}
		r.scanChunk(fs, text, at, carry)
		if eof {
			break
		}
		next := at.advance(text)
		carry = 0
		if !cleanCut {
			carry = min(overlap, len(text))
			next = at.advance(text[:len(text)-carry])
		}
		copy(buf[:carry], text[len(text)-carry:])
		buf = buf[:carry]
		at = next
	}
	r.bytes.Add(total)
	r.files.Add(1)
	return nil
}

// scanChunk runs every detector over one chunk starting at position at.
// The first carry bytes were scanned with the previous chunk.
func (r *run) scanChunk(fs *fileState, text string, at pos, carry int) {
	posOf := func(off int) pos { return at.advance(text[:off]) }
	var claimed []string // JWT and JWK values other rules must not report again
	for _, m := range jwtPattern.FindAllStringIndex(text, -1) {
		raw := text[m[0]:m[1]]
		info, err := ParseJWT(raw)
		if err != nil {
			continue
		}
		claimed = append(claimed, raw)
		p := posOf(m[0])
		rule, desc, ok := classifyJWT(info, r.s.now())
		if !ok {
			if info.IsLease() && !fs.leases[p] {
				fs.leases[p] = true
				r.leases.Add(1)
			}
			continue
		}
		fs.add(r.finding(fs, rule, desc, p, raw))
	}
	for _, m := range findJWKs(text) {
		val := text[m.Start:m.End]
		claimed = append(claimed, val)
		rule, desc := "private-jwk", fmt.Sprintf("Private JWK (kty %s): a signing or DPoP private key shipped with the app", m.Kty)
		if m.Kty == "oct" {
			rule, desc = "symmetric-jwk", "Symmetric JWK (kty oct): a shared secret key shipped with the app"
		}
		fs.add(r.finding(fs, rule, desc, posOf(m.Start), val))
	}
	r.scanInlineSourceMaps(fs, text)
	for _, h := range r.s.gitleaksHits(r.ctx, fs.name, text, at) {
		g := h.g
		if overlapsAny(g.Secret, claimed) {
			continue
		}
		fs.add(r.finding(fs, g.RuleID, g.Description, h.p, g.Secret))
	}
}

func (r *run) finding(fs *fileState, rule, desc string, p pos, secret string) Finding {
	return Finding{
		RuleID: rule, Description: desc, Severity: severityOf(rule),
		File: fs.name, Line: p.line, Column: p.col, Excerpt: Redact(secret), blob: fs.blob,
	}
}

// overlapsAny reports whether secret is part of, or contains, one of
// claimed (a JWT a generic rule also matched, say).
func overlapsAny(secret string, claimed []string) bool {
	for _, c := range claimed {
		if strings.Contains(c, secret) || strings.Contains(secret, c) {
			return true
		}
	}
	return false
}

// gitleaksPos converts a gitleaks finding's location to an absolute
// position of the secret. gitleaks reports a 0-based line and the column
// of the whole match, counting the preceding newline on every line but
// the first (detect/location.go).
func gitleaksPos(g report.Finding, at pos) pos {
	line, col := g.StartLine, g.StartColumn
	if line > 0 {
		col--
	}
	if i := strings.Index(g.Match, g.Secret); i > 0 {
		prefix := g.Match[:i]
		if nl := strings.Count(prefix, "\n"); nl > 0 {
			line += nl
			col = len(prefix) - strings.LastIndexByte(prefix, '\n')
		} else {
			col += i
		}
	}
	if line == 0 {
		return pos{at.line, at.col + col - 1}
	}
	return pos{at.line + line, col}
}

// size prints a byte count in binary units.
func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
