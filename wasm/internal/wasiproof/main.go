// Command wasiproof runs the browser client's core (wasm/client) under
// GOOS=wasip1, so a host test can run it in wazero and check that proofs
// made by the WebAssembly build verify with the sidecar's verifier.
//
// Usage: wasiproof METHOD URL TOKEN
//
// It signs with a pure-Go P-256 key: wasip1 has no WebCrypto. The browser
// build never links this signer.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/wasm/client"
)

// scripted answers with use_dpop_nonce first, then 200, and prints every
// request it is given as one JSON line.
type scripted struct{ n int }

func (s *scripted) Do(_ context.Context, r *client.Request) (*client.Response, error) {
	s.n++
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if s.n == 1 {
		return &client.Response{Status: 401, Header: map[string][]string{
			"www-authenticate": {`DPoP error="use_dpop_nonce"`},
			"dpop-nonce":       {"server-nonce-1"},
		}}, nil
	}
	return &client.Response{Status: 200}, nil
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: wasiproof METHOD URL TOKEN")
		os.Exit(2)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	signer, err := dpop.NewECDSASigner(k)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f := &client.Fetcher{Signer: signer, Transport: &scripted{}}
	resp, err := f.Do(context.Background(), &client.Request{Method: os.Args[1], URL: os.Args[2]}, os.Args[3])
	if err != nil || resp.Status != 200 {
		fmt.Fprintln(os.Stderr, "fetch failed:", err)
		os.Exit(1)
	}
}
