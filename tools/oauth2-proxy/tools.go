//go:build tools

// Package tools pins oauth2-proxy v7.15.6 as a program for
// `make bench-peers`, the proxy benchmark against the Go proxies people
// already run. It lives in its own module so oauth2-proxy's dependency
// graph never touches keyless's go.mod. Build it with
// `make oauth2-proxy`.
package tools

import _ "github.com/oauth2-proxy/oauth2-proxy/v7"
