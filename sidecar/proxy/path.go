package proxy

import "github.com/keyless-dev/keyless/sidecar/proxy/check"

// MaxPathLen bounds the request path.
const MaxPathLen = check.MaxPathLen

// CanonicalPath is [check.CanonicalPath]: the one canonical form of a raw
// request path that routes match and the upstream receives, or an error
// for every ambiguous form.
func CanonicalPath(raw string) (string, error) { return check.CanonicalPath(raw) }

func rawPath(requestURI string) (string, bool) { return check.RawPath(requestURI) }

func unescapePath(p string) string { return check.UnescapePath(p) }
