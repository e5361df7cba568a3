// Command appserver serves the Where2Eat micro app (demo/app) and the
// <keyless-login> assets (web-component/) as a static host would: correct
// MIME types (.wasm as application/wasm) and a strict Content-Security-Policy
// that allows only this origin, the issuer and the API. The page names the
// issuer and the API; when they are not the demo's default ports the
// server fills in the ones given, as a builder's export would.
//
//	go run ./demo/appserver -addr 127.0.0.1:8789 -issuer http://127.0.0.1:8787 -api http://127.0.0.1:8788
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/keyless-dev/keyless/demo/internal/serve"
)

// command declares appserver's flags and returns what runs once they are
// parsed.
func command(fs *flag.FlagSet) func(context.Context, string) error {
	var site Site
	fs.StringVar(&site.Issuer, "issuer", DefaultIssuer, "the keyless issuer URL the page uses")
	fs.StringVar(&site.API, "api", DefaultAPI, "the keyless proxy URL the page calls")
	root := fs.String("root", ".", "repository root (holds demo/app and web-component)")
	return func(ctx context.Context, addr string) error {
		for _, u := range []string{site.Issuer, site.API} {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Path != "" {
				return fmt.Errorf("%q is not an origin like http://127.0.0.1:8787", u)
			}
		}
		site.AppDir, site.ComponentDir = filepath.Join(*root, "demo", "app"), filepath.Join(*root, "web-component")
		h, err := New(site)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := serve.NewServer(h)
		fmt.Fprintf(os.Stderr, "appserver: serving the Where2Eat app on http://%s\n", ln.Addr())
		return serve.Until(ctx, srv, func() error { return srv.Serve(ln) })
	}
}

func main() {
	serve.Main("appserver", serve.Flags{Addr: "127.0.0.1:8789", AddrUsage: "listen address"}, command)
}
