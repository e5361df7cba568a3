package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/wasm/client"
)

// TestWASIProofsVerify builds the client core for GOOS=wasip1, runs it in
// wazero, and verifies what it sent with the sidecar's verifier: a fresh
// proof per attempt, the nonce on the retry, ath, one key.
func TestWASIProofsVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasip1 binary")
	}
	wasm := filepath.Join(t.TempDir(), "wasiproof.wasm")
	build := exec.Command("go", "build", "-o", wasm, ".")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	cacheDir := filepath.Join(os.TempDir(), "keyless-wazero-cache")
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}

	const url, token = "https://api.example.test/v1/orders", "lease-token"
	run := func() []client.Request {
		var stdout, stderr bytes.Buffer
		// wazero's defaults are a fixed random source and a fake clock:
		// every guest would make the same key and the same jti.
		cfg := wazero.NewModuleConfig().
			WithArgs("wasiproof", "GET", url+"?q=1", token).
			WithStdout(&stdout).WithStderr(&stderr).
			WithRandSource(rand.Reader).WithSysWalltime().WithSysNanotime().WithSysNanosleep()
		if _, err := rt.InstantiateModule(ctx, mod, cfg.WithName("")); err != nil {
			t.Fatalf("guest: %v\n%s", err, stderr.String())
		}
		var reqs []client.Request
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r client.Request
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, r)
		}
		return reqs
	}

	keys := map[string]bool{}
	for i := 0; i < 2; i++ {
		reqs := run()
		if len(reqs) != 2 {
			t.Fatalf("guest sent %d requests, want 2 (one nonce retry)", len(reqs))
		}
		var jtis []string
		for n, r := range reqs {
			if r.Header["Authorization"] != "DPoP "+token {
				t.Errorf("Authorization = %q", r.Header["Authorization"])
			}
			var opts dpop.VerifyOptions
			if n == 1 {
				opts.Nonce = exact("server-nonce-1")
			}
			p, err := dpop.Verify(ctx, r.Header["DPoP"], dpop.Request{Method: "GET", URL: url, AccessToken: token}, opts)
			if err != nil {
				t.Fatalf("proof %d from the wasip1 guest: %v", n, err)
			}
			jtis = append(jtis, p.JTI)
			keys[p.JKT] = true
		}
		if jtis[0] == jtis[1] {
			t.Error("retry reused the jti")
		}
	}
	if len(keys) != 2 {
		t.Errorf("two guest runs made %d distinct keys, want 2 (real randomness)", len(keys))
	}
}

type exact string

func (e exact) CheckNonce(n string) error {
	if n != string(e) {
		return dpop.ErrUseNonce
	}
	return nil
}
