//go:build tools

// Package tools pins Ory Hydra as a program for keyless's tests. It lives
// in its own module so Hydra's dependency graph never touches keyless's
// go.mod; build it with `go build -C tools/hydra -o ../../.cache/bin/hydra
// github.com/ory/hydra/v2`.
package tools

import _ "github.com/ory/hydra/v2"
