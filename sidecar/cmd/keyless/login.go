package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/oidclogin"
)

// loginProviders builds the relying parties of the config's login.oidc
// entries for the issuer at issuerURL, reading each client secret from its
// file. A secret file readable by other users is refused, as the data
// directory's secrets are.
func loginProviders(cfg *config.Config, issuerURL string) ([]*oidclogin.Provider, error) {
	var out []*oidclogin.Provider
	var errs []error
	for _, o := range cfg.Login.OIDC {
		secret, err := readSecretFile(o.ClientSecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("login.oidc %s: client_secret_file: %w", o.Name, err))
			continue
		}
		out = append(out, oidclogin.New(o, secret, strings.TrimSuffix(issuerURL, "/")+authserver.CallbackPath, oidclogin.Options{}))
	}
	return out, errors.Join(errs...)
}

// readSecretFile reads a secret kept in a file of mode 0600 or stricter;
// surrounding white space is dropped.
func readSecretFile(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by other users (mode %v); chmod 600 it", p, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", p)
	}
	return s, nil
}

// checkLogins is keyless doctor's check of each login.oidc entry: the
// secret file, discovery (issuer and endpoints), the JWKS and a key of an
// allowed algorithm ([oidclogin.Provider.Check]). The redirect URI to
// register is printed with the fix.
func (d *doctor) checkLogins(ctx context.Context, cfg *config.Config) {
	if cfg == nil {
		return
	}
	issuer := cfg.Issuer.URL
	if issuer == "" {
		issuer = d.issuer
	}
	for _, o := range cfg.Login.OIDC {
		name := "login " + o.Name
		secret, err := readSecretFile(o.ClientSecretFile)
		if err != nil {
			d.add(statusFail, name, "client_secret_file: "+oneLine(err)+".", "write the client secret keyless has at "+o.Issuer+" into a 0600 file.")
			continue
		}
		p := oidclogin.New(o, secret, strings.TrimSuffix(issuer, "/")+authserver.CallbackPath, oidclogin.Options{Client: d.client, Now: d.now})
		if err := p.Check(ctx); err != nil {
			d.add(statusFail, name, oneLine(err)+".", "check issuer (it must equal the provider's discovery issuer exactly) and that the provider is reachable from here.")
			continue
		}
		d.add(statusOK, name, fmt.Sprintf("%s: discovery, JWKS and a signing key are usable; redirect URI to register: %s%s.",
			o.Issuer, strings.TrimSuffix(issuer, "/"), authserver.CallbackPath), "")
	}
}
