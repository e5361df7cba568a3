package scan

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/regexp"
)

// Limits bound the work one input may cause. The zero value of each
// field means its default.
type Limits struct {
	// MaxDepth is how many containers (zip, tar, gzip or bzip2 layers)
	// may nest: a .tar.gz inside a .zip is depth 3. Deeper input is
	// refused. Zero means 8.
	MaxDepth int
	// MaxFileSize is how much of one file or archive entry is scanned as
	// text; the rest is skipped and reported. Zero means 256 MiB.
	MaxFileSize int64
	// MaxRatio is the compression ratio (uncompressed:compressed) above
	// which an archive entry or gzip stream is refused as a bomb, once it
	// has produced more than 1 MiB. Text rarely compresses past 20:1.
	// Zero means 100.
	MaxRatio int64
	// MaxTotal is how many uncompressed bytes one input (a path given, or
	// one git blob) may expand to across all its nested archives. Zero
	// means 4 GiB.
	MaxTotal int64
	// MaxEntries is how many members one zip archive may list; an archive
	// with more is refused. Zero means 100,000.
	MaxEntries int
}

// Default limits; see [Limits].
const (
	DefaultMaxDepth    = 8
	DefaultMaxFileSize = 256 << 20
	DefaultMaxRatio    = 100
	DefaultMaxTotal    = 4 << 30
	DefaultMaxEntries  = 100_000
)

// ratioFloor is the output size below which compression ratios are not
// checked: small, highly repetitive files are normal.
const ratioFloor = 1 << 20

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultMaxTotal
	}
	return l
}

// Options configure a [Scanner]. The zero value is ready to use.
type Options struct {
	// Limits bound archive expansion and file size.
	Limits Limits
	// Workers is how many files are scanned at once; zero means
	// GOMAXPROCS.
	Workers int
	// Now is the clock JWT expiry is judged against; nil means time.Now.
	Now func() time.Time
	// Git is the git binary for [Scanner.ScanGit]; empty means "git" on
	// PATH.
	Git string
	// MaxDecodeDepth is how many rounds of decoding (base64, hex,
	// percent-encoding) gitleaks applies to find encoded secrets. Zero
	// means 5, gitleaks's CLI default; negative means none.
	MaxDecodeDepth int

	// wholeChunks runs gitleaks as its CLI does: every rule, with
	// decoding, over whole chunks. Slower; the reference the fast path
	// is tested against.
	wholeChunks bool
}

// Scanner scans files, archives and git history. It is safe for
// concurrent use.
type Scanner struct {
	limits  Limits
	workers int
	clock   func() time.Time
	git     string
	allow   []*config.Allowlist

	// full runs every gitleaks rule with decoding over a whole chunk.
	// Chunks in which nothing could decode (decode.go) go to plain, with
	// every rule but the generic one and no decoding, and to gen, which
	// runs the generic rule on keyword windows (generic.go). plain and
	// gen are nil when every chunk goes to full.
	full        *detect.Detector
	plain       *detect.Detector
	gen         *detect.Detector
	genRegex    *regexp.Regexp
	genKeywords []string
	genEntropy  float64
}

// New builds a Scanner with gitleaks's default rules plus keyless's.
func New(opts Options) (*Scanner, error) {
	cfg, err := baseConfig()
	if err != nil {
		return nil, err
	}
	depth := 5
	if opts.MaxDecodeDepth != 0 {
		depth = max(0, opts.MaxDecodeDepth)
	}
	s := &Scanner{
		limits: opts.Limits.withDefaults(), workers: opts.Workers, clock: opts.Now,
		git: opts.Git, allow: cfg.Allowlists,
	}
	s.full = detect.NewDetector(cfg)
	s.full.MaxDecodeDepth = depth
	if !opts.wholeChunks {
		rest, generic, keywords := splitGeneric(cfg)
		s.plain = detect.NewDetector(rest)
		s.gen = detect.NewDetector(generic)
		s.genRegex = generic.Rules[genericRule].Regex
		s.genKeywords = keywords
		s.genEntropy = generic.Rules[genericRule].Entropy
	}
	if s.workers <= 0 {
		s.workers = runtime.GOMAXPROCS(0)
	}
	if s.git == "" {
		s.git = "git"
	}
	return s, nil
}

func (s *Scanner) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// pathAllowed reports whether gitleaks's global allowlist excludes the
// path (lock files, images, node_modules, vendored libraries), so the
// scanner does not read it at all.
func (s *Scanner) pathAllowed(p string) bool {
	for _, a := range s.allow {
		if len(a.Commits) == 0 && len(a.Regexes) == 0 && len(a.StopWords) == 0 && a.PathAllowed(p) {
			return true
		}
	}
	return false
}

// run collects one scan's results from concurrent workers.
type run struct {
	s   *Scanner
	ctx context.Context

	mu       sync.Mutex
	findings []Finding
	skipped  []Skip

	files, bytes, leases atomic.Int64
}

func (s *Scanner) newRun(ctx context.Context) *run { return &run{s: s, ctx: ctx} }

func (r *run) addFindings(fs []Finding) {
	if len(fs) == 0 {
		return
	}
	r.mu.Lock()
	r.findings = append(r.findings, fs...)
	r.mu.Unlock()
}

func (r *run) skip(path, reason string, refused bool) {
	r.mu.Lock()
	r.skipped = append(r.skipped, Skip{Path: path, Reason: reason, Refused: refused})
	r.mu.Unlock()
}

func (r *run) report() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortFunc(r.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column), cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Commit, b.Commit))
	})
	slices.SortFunc(r.skipped, func(a, b Skip) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Reason, b.Reason))
	})
	return &Report{
		Findings: r.findings, Skipped: r.skipped,
		Files: r.files.Load(), Bytes: r.bytes.Load(), Leases: r.leases.Load(),
	}
}
