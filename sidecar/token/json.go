package token

import "github.com/keyless-dev/keyless/sidecar/token/atjwt"

// decodeObject is [atjwt.DecodeObject]: strict JSON for token headers and
// payloads.
func decodeObject(b []byte) (map[string]any, error) { return atjwt.DecodeObject(b) }
