package lease

import (
	"context"
	"net/http"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/federation"
)

// IssuerCheck is the outcome of asking one external issuer whether its
// tokens could pass here ([federation.Validator.Check]).
type IssuerCheck struct {
	Name, Issuer string
	// Err is nil when the issuer is usable. Unreachable tells an issuer
	// that did not answer (it may come back) from one whose tokens could
	// never pass (wrong metadata, no key of an allowed alg, clock skew).
	Err         error
	Unreachable bool
}

// CheckIssuers asks every external issuer of cfg's vending section, each
// within timeout: `keyless serve` refuses to start when one could never
// pass and `keyless doctor` fails on any problem. A vending section that
// does not decode is returned as the error.
//
// client nil means http.DefaultClient; now nil means time.Now.
func CheckIssuers(ctx context.Context, file string, cfg *config.Config, client *http.Client, now func() time.Time, timeout time.Duration) ([]IssuerCheck, error) {
	vc, err := DecodeConfig(file, &cfg.Vending)
	if err != nil {
		return nil, err
	}
	issuers, err := vc.ExternalIssuers(client, now)
	if err != nil {
		return nil, err
	}
	out := make([]IssuerCheck, len(issuers))
	done := make(chan struct{}, len(issuers))
	for i, is := range issuers {
		out[i] = IssuerCheck{Name: is.Name, Issuer: is.Issuer}
		go func() {
			defer func() { done <- struct{}{} }()
			c, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := is.Federation.Check(c)
			out[i].Err, out[i].Unreachable = err, federation.Unreachable(err) || (err != nil && c.Err() != nil)
		}()
	}
	for range issuers {
		<-done
	}
	return out, nil
}
