package atjwt

import "github.com/keyless-dev/keyless/sidecar/internal/strictjson"

// DecodeObject decodes one JSON object strictly (docs/security.md#d11):
// exact-case member names, duplicates refused, bounded nesting, nothing
// after the object, numbers as json.Number. It is the DPoP core's parser
// ([strictjson.Parse]), so proofs and tokens are read alike.
func DecodeObject(b []byte) (map[string]any, error) { return strictjson.Parse(b) }
