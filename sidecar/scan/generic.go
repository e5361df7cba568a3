package scan

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/report"
	"github.com/zricethezav/gitleaks/v8/sources"
)

// genericRule is gitleaks's catch-all rule, keyword = value with an
// entropic value. Its regex has no literal prefix and is case-insensitive,
// so Go's regexp runs it as an NFA over every chunk containing one of its
// very common keywords (key, token, auth, api, ...): on JS bundles it
// costs more than all other rules together. The scanner runs it only on
// windows around its keywords instead, where the regexp package can use
// its much faster backtracker, and with its own detector.
const genericRule = "generic-api-key"

// Window bounds around a keyword of the generic rule. Its regex allows at
// most 50 identifier bytes before the keyword and about 200 after (gaps
// of 20, 3 and 5, a value of at most 150); a base64 value may be longer,
// so a window also runs on to the end of the token it stops in.
const (
	genericBefore = 64
	genericAfter  = 320
	genericMaxRun = 16 << 10
	genericMerge  = 32
)

// splitGeneric returns cfg without the generic rule, and a config with
// only it (and the global allowlists).
func splitGeneric(cfg config.Config) (rest, generic config.Config, keywords []string) {
	rest = cfg
	rest.Rules = map[string]config.Rule{}
	rest.Keywords = map[string]struct{}{}
	rest.OrderedRules = nil
	for _, id := range cfg.OrderedRules {
		r, ok := cfg.Rules[id]
		if !ok {
			continue
		}
		if id == genericRule {
			generic = cfg
			generic.Rules = map[string]config.Rule{id: r}
			generic.OrderedRules = []string{id}
			generic.Keywords = map[string]struct{}{}
			for _, k := range r.Keywords {
				generic.Keywords[strings.ToLower(k)] = struct{}{}
				keywords = append(keywords, strings.ToLower(k))
			}
			continue
		}
		rest.Rules[id] = r
		rest.OrderedRules = append(rest.OrderedRules, id)
		for _, k := range r.Keywords {
			rest.Keywords[strings.ToLower(k)] = struct{}{}
		}
	}
	return rest, generic, keywords
}

// asciiLower lower-cases ASCII letters only, so byte offsets in the
// result are offsets in s (strings.ToLower may change lengths).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/=_.-", c) >= 0
}

// genericWindows returns the [start, end) windows of text around each
// keyword occurrence that could start a generic-rule finding, as
// genericCandidate judges with byte scans. Most keywords in code
// (props.key, authState, key: "title") fail it, so the regexp runs on
// little of the text.
func genericWindows(text string, keywords []string, minEntropy float64) [][2]int {
	lower := asciiLower(text)
	var at [][2]int // keyword start, end
	for _, k := range keywords {
		for i := 0; ; {
			j := strings.Index(lower[i:], k)
			if j < 0 {
				break
			}
			if p := i + j; genericCandidate(text, p+len(k), minEntropy) {
				at = append(at, [2]int{p, p + len(k)})
			}
			i += j + len(k)
		}
	}
	slices.SortFunc(at, func(a, b [2]int) int { return a[0] - b[0] })
	var out [][2]int
	for _, k := range at {
		s := max(0, k[0]-genericBefore)
		e := min(len(text), k[0]+genericAfter)
		for limit := min(len(text), e+genericMaxRun); e < limit && isTokenByte(text[e]); e++ {
		}
		if n := len(out); n > 0 && s <= out[n-1][1]+genericMerge {
			out[n-1][1] = max(out[n-1][1], e)
			continue
		}
		out = append(out, [2]int{s, e})
	}
	return out
}

// genericCandidate reports whether the text after a keyword ending at q
// could complete a generic-rule finding: after at most 23 identifier,
// space or quote bytes, an assignment operator (= > : | ? ,), then within
// 10 bytes a value the regex could capture (a run of [\w.=-] of 10 to
// 150 bytes, or of [a-z0-9+/] of 12 or more with up to three '=', ended
// by a quote, space, ';', an escaped \n or \r, or the end) whose entropy
// passes the rule's threshold, as gitleaks checks it after matching.
func genericCandidate(text string, q int, minEntropy float64) bool {
	j := q
	for j < len(text) && j-q <= 23 && isGap(text[j]) {
		j++
	}
	if j >= len(text) || j-q > 23 || strings.IndexByte("=>:|?,", text[j]) < 0 {
		return false
	}
	for s := j + 1; s <= j+10 && s < len(text); s++ {
		n := 0
		for s+n < len(text) && isWordValue(text[s+n]) {
			n++
		}
		if n >= 10 && n <= 150 && terminates(text, s+n) && shannon(text[s:s+n]) > minEntropy {
			return true
		}
		if !isAlnum(text[s]) {
			continue
		}
		n = 1
		for s+n < len(text) && (isAlnum(text[s+n]) || text[s+n] == '+' || text[s+n] == '/') {
			n++
		}
		if n < 12 {
			continue
		}
		for k := 0; k < 3 && s+n < len(text) && text[s+n] == '='; k++ {
			n++
		}
		if terminates(text, s+n) && shannon(text[s:s+n]) > minEntropy {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isWordValue is the rule's first value class, [\w.=-].
func isWordValue(c byte) bool {
	return isAlnum(c) || c == '_' || c == '.' || c == '=' || c == '-'
}

// terminates reports whether the rule's value may end before text[i]:
// (?:[\x60'"\s;]|\\[nr]|$).
func terminates(text string, i int) bool {
	if i >= len(text) {
		return true
	}
	switch text[i] {
	case '`', '\'', '"', ' ', '\t', '\n', '\f', '\r', ';':
		return true
	case '\\':
		return i+1 < len(text) && (text[i+1] == 'n' || text[i+1] == 'r')
	}
	return false
}

// shannon is gitleaks's entropy measure (detect/utils.go shannonEntropy)
// for ASCII strings.
func shannon(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	e := 0.0
	inv := 1 / float64(len(s))
	for _, c := range counts {
		if c > 0 {
			f := float64(c) * inv
			e -= f * math.Log2(f)
		}
	}
	return e
}

// isGap is the union of the rule's [ \t\w.-] and [\s'"] classes.
func isGap(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\'' || c == '"' ||
		c == '_' || c == '.' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// hit is a gitleaks finding with its absolute position.
type hit struct {
	g report.Finding
	p pos
}

// gitleaksHits runs gitleaks's rules over a chunk. When the chunk holds
// something to decode, that is one run of every rule with decoding, as
// gitleaks's CLI does. Otherwise it is every rule but the generic one
// over the whole chunk, the generic one over keyword windows, and a
// generic hit another rule explains is dropped (as gitleaks's own filter
// does within one fragment).
func (s *Scanner) gitleaksHits(ctx context.Context, name, text string, at pos) []hit {
	// detect.Fragment is deprecated for sources.Fragment in gitleaks v9,
	// but DetectContext, the only per-fragment entry point, still takes it.
	//lint:ignore SA1019 see above
	frag := func(raw string) detect.Fragment {
		//lint:ignore SA1019 see above
		return detect.Fragment(sources.Fragment{Raw: raw, FilePath: name})
	}
	var hits []hit
	if s.plain == nil || mayDecode(text) {
		for _, g := range s.full.DetectContext(ctx, frag(text)) {
			hits = append(hits, hit{g, gitleaksPos(g, at)})
		}
		return hits
	}
	for _, g := range s.plain.DetectContext(ctx, frag(text)) {
		hits = append(hits, hit{g, gitleaksPos(g, at)})
	}
	specific := len(hits)
	for _, w := range genericWindows(text, s.genKeywords, s.genEntropy) {
		win := text[w[0]:w[1]]
		if !s.genRegex.MatchString(win) {
			continue
		}
		wat := at.advance(text[:w[0]])
	next:
		for _, g := range s.gen.DetectContext(ctx, frag(win)) {
			p := gitleaksPos(g, wat)
			for _, h := range hits[:specific] {
				if h.p.line == p.line && strings.Contains(h.g.Secret, g.Secret) {
					continue next
				}
			}
			hits = append(hits, hit{g, p})
		}
	}
	return hits
}
