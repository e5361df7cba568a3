// Package docs holds keyless's documentation. Its tests keep
// configuration.md and the JSON Schemas under schema/ in step with the
// config structs the code decodes; `go test ./docs -update` rewrites the
// schemas from the structs and the reference's descriptions.
package docs
