package scan

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/scan/scantest"
)

// BenchmarkScanTree reports scan throughput (MB/s) over a generated
// micro-app tree of KEYLESS_SCAN_BENCH_MB megabytes (default 50):
//
//	go test -run XXX -bench ScanTree -benchtime 1x ./sidecar/scan/
//
// For the side-by-side against gitleaks's CLI on the same tree, run
// `go run ./sidecar/scan/scantest/compare`.
func BenchmarkScanTree(b *testing.B) {
	mb := 50
	if v, err := strconv.Atoi(os.Getenv("KEYLESS_SCAN_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	tree, err := scantest.Write(dir, int64(mb)<<20, 1)
	if err != nil {
		b.Fatal(err)
	}
	s := newScanner(b, Options{})
	b.SetBytes(tree.Bytes)
	b.ResetTimer()
	for b.Loop() {
		rep, err := s.ScanPaths(context.Background(), []string{dir})
		if err != nil {
			b.Fatal(err)
		}
		if got := len(rep.Findings); got < tree.Secrets {
			b.Fatalf("%d findings, planted %d", got, tree.Secrets)
		}
	}
}
