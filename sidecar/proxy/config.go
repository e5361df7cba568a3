package proxy

import (
	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// The configuration types live in [check], which the edge Worker shares;
// these aliases keep the proxy's API.
type (
	Config          = check.Config
	Upstream        = check.Upstream
	UpstreamTLS     = check.UpstreamTLS
	Credential      = check.Credential
	Route           = check.Route
	Preview         = check.Preview
	RateLimit       = check.RateLimit
	DPoPConfig      = check.DPoPConfig
	NonceConfig     = check.NonceConfig
	TokenConfig     = check.TokenConfig
	Headers         = check.Headers
	CORS            = check.CORS
	WebSocketConfig = check.WebSocketConfig
	ServerConfig    = check.ServerConfig
	AuditConfig     = check.AuditConfig
)

// Defaults.
const (
	DefaultPrefix           = check.DefaultPrefix
	DefaultTicketPath       = check.DefaultTicketPath
	DefaultTicketParam      = check.DefaultTicketParam
	DefaultMaxBodyBytes     = check.DefaultMaxBodyBytes
	DefaultMaxResponseBytes = check.DefaultMaxResponseBytes
	DefaultStoreTimeout     = check.DefaultStoreTimeout
	AuditRefuse             = check.AuditRefuse
	AuditContinue           = check.AuditContinue
)

// LoadConfig reads a YAML file holding a Config. Unknown fields are errors.
func LoadConfig(path string) (Config, error) { return check.LoadConfig(path) }

// ParseConfig decodes YAML into a Config, refusing unknown fields. It does
// not validate; call WithDefaults and Validate.
func ParseConfig(b []byte) (Config, error) { return check.ParseConfig(b) }

// DecodeNode decodes the proxy: section of the keyless.yaml named file,
// with the file's lines in errors.
func DecodeNode(file string, n *yaml.Node) (Config, error) { return check.DecodeNode(file, n) }
