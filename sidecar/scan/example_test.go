package scan_test

import (
	"context"
	"os"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/scan"
)

// Scan a bundle from a stream and print the findings for people. The
// token is assembled at run time so the repository holds none.
func ExampleScanner_ScanReader() {
	s, err := scan.New(scan.Options{})
	if err != nil {
		panic(err)
	}
	token := "gh" + "p_" + "Zx8Qm2Lr7Kt4Wn6Vb1" + "Hs9Jd3Fg5Cy0Pa2Ue4"
	bundle := "!function(){var c={githubToken:\"" + token + "\"};fetch(c)}();\n"
	rep, err := s.ScanReader(context.Background(), "dist/main.js", strings.NewReader(bundle))
	if err != nil {
		panic(err)
	}
	scan.WriteText(os.Stdout, rep)
	// Output:
	// dist/main.js:1:33: high github-pat: ghp_…(40 chars)
	//     Uncovered a GitHub Personal Access Token, potentially leading to unauthorized repository access and sensitive content exposure.
	// 1 finding (1 high) in 1 file, 88 bytes scanned
}
