package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProxyCommandCheck(t *testing.T) {
	t.Setenv("ORDERS_API_KEY", "test-secret")
	var out, errb bytes.Buffer
	if err := Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml", "--check"}, &out, &errb); err != nil {
		t.Fatalf("check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ok (6 routes)") {
		t.Errorf("output %q", out.String())
	}
	if err := Run([]string{"proxy"}, &out, &errb); exitCode(err) != 2 {
		t.Errorf("no --config: exit %d, want 2", exitCode(err))
	}
	errb.Reset()
	if err := Run([]string{"proxy", "--help"}, &out, &errb); exitCode(err) != 0 || !strings.Contains(errb.String(), "--config") {
		t.Errorf("--help: exit %d, usage %q", exitCode(err), errb.String())
	}
}
