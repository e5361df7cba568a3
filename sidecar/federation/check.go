package federation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxClockSkew is the largest difference between keyless's clock and the
// issuer's (its HTTP Date header) that [Validator.Check] accepts: beyond
// the leeway, fresh tokens would look expired or not yet valid.
func (v *Validator) maxClockSkew() time.Duration { return v.cfg.leeway() }

// Check asks the issuer whether its tokens could ever pass here, for
// `keyless doctor` and the startup check of `keyless serve`: metadata
// readable and naming the issuer, JWKS reachable, at least one key usable
// with an allowed alg, clocks within the leeway. It returns every problem
// found (errors.Join); nil means the issuer is usable. It bypasses the
// refresh rate limit.
func (v *Validator) Check(ctx context.Context) error {
	name := v.cfg.Name
	var errs []error
	if v.remote != nil {
		if v.cfg.JWKSURI == "" {
			md, err := v.remote.Metadata(ctx)
			if err != nil {
				return fmt.Errorf("issuer %s: discovery: %w", name, err)
			}
			if len(md.IDTokenSigningAlgs) > 0 && slices.Contains(v.cfg.tokenTypes(), IDToken) &&
				!slices.ContainsFunc(md.IDTokenSigningAlgs, func(a string) bool { return slices.Contains(v.cfg.algs(), a) }) {
				errs = append(errs, fmt.Errorf("issuer %s: signs ID tokens with %v, none of which algs allows", name, md.IDTokenSigningAlgs))
			}
		}
		if err := v.remote.Refresh(ctx); err != nil {
			return errors.Join(append(errs, fmt.Errorf("issuer %s: JWKS: %w", name, err))...)
		}
		if d := v.remote.ServerDate(); !d.IsZero() {
			skew := v.now().Sub(d)
			// Date has one-second resolution.
			if skew.Abs() > v.maxClockSkew()+time.Second {
				errs = append(errs, fmt.Errorf("issuer %s: clock skew %s is more than the leeway %s", name, skew.Round(time.Second), v.cfg.leeway()))
			}
		}
	}
	keys, err := v.keys.Keys(ctx, "")
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("issuer %s: keys: %w", name, err))...)
	}
	usable := false
	for _, k := range keys {
		for _, alg := range v.cfg.algs() {
			if k.usableFor(alg) && rsaBigEnough(k.Public) {
				usable = true
			}
		}
	}
	if !usable {
		errs = append(errs, fmt.Errorf("issuer %s: the JWKS has no key usable with %v (RSA keys need %d bits)", name, v.cfg.algs(), MinRSABits))
	}
	return errors.Join(errs...)
}
