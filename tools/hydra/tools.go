//go:build tools

// Package tools pins Ory Hydra v2.3.0 as a program for keyless's tests
// (the /device sign-in through login.oidc, and Hydra's JWT access tokens
// at the vending service). It lives in its own module so Hydra's
// dependency graph never touches keyless's go.mod. go.mod repeats Hydra's
// own replace of gobuffalo/pop (a dependency's replace directives do not
// apply to the main module). Build it with `make hydra`: SQLite (cgo, tags
// sqlite) is needed for DSN=memory.
package tools

import _ "github.com/ory/hydra/v2"
