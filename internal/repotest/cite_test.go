package repotest

import (
	"go/scanner"
	"go/token"
	"path"
	"regexp"
	"strings"
	"testing"
)

// A citation is a piece of prose a reader follows: a comment in code, or
// Markdown outside code blocks.
type citation struct {
	file string
	line int
	text string
	code bool // Markdown inline code: a path there is cited, a number is not prose
}

// goComments returns the comments of a Go file.
func goComments(file, src string) []citation {
	var out []citation
	fset := token.NewFileSet()
	f := fset.AddFile(file, -1, len(src))
	var s scanner.Scanner
	s.Init(f, []byte(src), func(token.Position, string) {}, scanner.ScanComments)
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return out
		}
		if tok == token.COMMENT {
			line := fset.Position(pos).Line
			for i, l := range strings.Split(lit, "\n") {
				out = append(out, citation{file: file, line: line + i, text: l})
			}
		}
	}
}

// jsComments returns the comments of a JavaScript or TypeScript file: //
// comments outside quotes, and /* */ blocks. It is a line scanner, not a
// parser; a regular expression literal holding // can fool it, which is
// why the rules it feeds look for citation shapes only.
func jsComments(file, src string) []citation {
	var out []citation
	inBlock := false
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if inBlock {
			end := strings.Index(line, "*/")
			if end < 0 {
				out = append(out, citation{file: file, line: n, text: line})
				continue
			}
			out = append(out, citation{file: file, line: n, text: line[:end]})
			line, inBlock = line[end+2:], false
		}
		var quote byte
		for j := 0; j < len(line); j++ {
			c := line[j]
			switch {
			case quote != 0:
				if c == '\\' {
					j++
				} else if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"' || c == '`':
				quote = c
			case c == '/' && j+1 < len(line) && line[j+1] == '/':
				out = append(out, citation{file: file, line: n, text: line[j+2:]})
				j = len(line)
			case c == '/' && j+1 < len(line) && line[j+1] == '*':
				rest := line[j+2:]
				if end := strings.Index(rest, "*/"); end >= 0 {
					out = append(out, citation{file: file, line: n, text: rest[:end]})
					j += 2 + end + 1
					continue
				}
				out = append(out, citation{file: file, line: n, text: rest})
				inBlock, j = true, len(line)
			}
		}
	}
	return out
}

var inlineCode = regexp.MustCompile("`[^`]*`")

// markdownProse returns a Markdown file's lines outside fenced code
// blocks, each split into its prose and its inline code.
func markdownProse(file, src string) []citation {
	var out []citation
	fence := ""
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		for _, c := range inlineCode.FindAllString(line, -1) {
			out = append(out, citation{file: file, line: i + 1, text: strings.Trim(c, "`"), code: true})
		}
		out = append(out, citation{file: file, line: i + 1, text: inlineCode.ReplaceAllString(line, "``")})
	}
	return out
}

func citations(t *testing.T, files []string) []citation {
	var out []citation
	for _, f := range files {
		switch path.Ext(f) {
		case ".go":
			out = append(out, goComments(f, readFile(t, f))...)
		case ".js", ".mjs", ".cjs", ".ts":
			out = append(out, jsComments(f, readFile(t, f))...)
		case ".md":
			out = append(out, markdownProse(f, readFile(t, f))...)
		}
	}
	return out
}

var (
	// mdPath is a cited Markdown document, with an optional anchor: a
	// token that starts after a space, bracket, quote or parenthesis (so
	// not inside a URL).
	mdPath = regexp.MustCompile(`(?:^|[\s(\[<'"])((?:\.{1,2}/)*(?:[\w.\-]+/)*[\w\-]+\.md)(#[\w\-]+)?\b`)
	// mdLink is a Markdown link target that is not a URL or an anchor.
	mdLink = regexp.MustCompile(`\]\(([^)#\s:]+)(#[^)\s]*)?\)`)
	// upPath is a path that climbs out of its directory.
	upPath = regexp.MustCompile(`(?:^|[\s(\[<'"])((?:\.\./)+[\w.\-/]+)`)
	// issueRef cites an issue or pull request of this project by number:
	// "issue 3", "issues #3", or a bare "#12". Another project's is cited
	// with its name ("owner/repo#12", "traefik PR #11267").
	issueRef = regexp.MustCompile(`(?i)\b(?:issues?|tickets?|bugs?)\s*#?\d+\b|(?:^|[\s(\[])#\d+\b`)
	otherPR  = regexp.MustCompile(`\w+ PR #\d+\b`)
	// numbered is a numbered rule of a checklist ("decision 10", "mistake
	// 14", "I-5", "rule 4"): it must say which document numbers it.
	numbered = regexp.MustCompile(`\b(?:decisions?|mistakes?|rules?|rows?)\s+\d+\b|\bI-\d+\b`)
	// anchorID is an explicit anchor in Markdown.
	anchorID = regexp.MustCompile(`<a id="([^"]+)"></a>`)
)

// resolve finds a cited path: relative to the citing file's directory,
// then to the repository root.
func resolve(have map[string]bool, from, p string) (string, bool) {
	for _, c := range []string{path.Join(path.Dir(from), p), path.Clean(p)} {
		if have[c] || have[c+"/"] {
			return c, true
		}
	}
	return "", false
}

// anchors lists the anchors of a Markdown file: explicit <a id> ones and
// the heading slugs GitHub makes.
func anchors(t *testing.T, file string) map[string]bool {
	out := map[string]bool{}
	src := readFile(t, file)
	for _, m := range anchorID.FindAllStringSubmatch(src, -1) {
		out[m[1]] = true
	}
	slug := regexp.MustCompile(`[^\w\- ]`)
	for line := range strings.SplitSeq(src, "\n") {
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			s := strings.ToLower(strings.TrimSpace(h))
			out[strings.ReplaceAll(slug.ReplaceAllString(s, ""), " ", "-")] = true
		}
	}
	return out
}

// TestCitations: the repository stands on its own. Comments and
// Markdown cite only documents the repository contains (and anchors those
// documents have), never a path outside it, never an issue or pull
// request number, and never a numbered checklist row without naming the
// document that numbers it (docs/security.md).
func TestCitations(t *testing.T) {
	files := repoFiles(t)
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			have[d+"/"] = true
		}
	}
	anchorsOf := map[string]map[string]bool{}
	reported := map[string]bool{}
	checkAnchor := func(c citation, target, anchor string) {
		if anchor == "" || anchor == "#" || !strings.HasSuffix(target, ".md") {
			return
		}
		if anchorsOf[target] == nil {
			anchorsOf[target] = anchors(t, target)
		}
		if key := c.file + ":" + target + anchor; !anchorsOf[target][strings.TrimPrefix(anchor, "#")] && !reported[key] {
			reported[key] = true
			t.Errorf("%s:%d: cites %s%s, an anchor %s does not have", c.file, c.line, target, anchor, target)
		}
	}
	// This package's own comments describe the shapes it looks for.
	var own []string
	for _, f := range files {
		if !strings.HasPrefix(f, "internal/repotest/") {
			own = append(own, f)
		}
	}
	cs := citations(t, own)
	missing := func(c citation, p string) {
		if key := c.file + ":" + p; !reported[key] {
			reported[key] = true
			t.Errorf("%s:%d: cites %s, which is not in the repository", c.file, c.line, p)
		}
	}
	if len(cs) < 1000 {
		t.Fatalf("read %d comment and prose lines, want more: is the extraction broken?", len(cs))
	}
	for _, c := range cs {
		for _, m := range mdPath.FindAllStringSubmatch(c.text, -1) {
			target, ok := resolve(have, c.file, m[1])
			if !ok {
				missing(c, m[1])
				continue
			}
			checkAnchor(c, target, m[2])
		}
		for _, m := range upPath.FindAllStringSubmatch(c.text, -1) {
			if p := strings.TrimRight(m[1], ".,;:"); !have[path.Join(path.Dir(c.file), p)] && !have[path.Join(path.Dir(c.file), p)+"/"] {
				missing(c, p)
			}
		}
		if strings.HasSuffix(c.file, ".md") && !c.code {
			for _, m := range mdLink.FindAllStringSubmatch(c.text, -1) {
				target, ok := resolve(have, c.file, m[1])
				if !ok {
					missing(c, m[1])
					continue
				}
				checkAnchor(c, target, m[2])
			}
		}
		if c.code {
			continue
		}
		text := otherPR.ReplaceAllString(c.text, "")
		if m := issueRef.FindString(text); m != "" {
			t.Errorf("%s:%d: cites an issue number (%q); say what the code does and why, or cite an RFC or docs/", c.file, c.line, strings.TrimSpace(m))
		}
		if m := numbered.FindString(c.text); m != "" && !strings.Contains(c.text, ".md") && c.file != "docs/security.md" {
			t.Errorf("%s:%d: cites %q without the document that numbers it (docs/security.md#...)", c.file, c.line, m)
		}
	}
}
