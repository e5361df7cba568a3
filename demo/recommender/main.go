// Command recommender is the Where2Eat recommender API (package
// [github.com/keyless-dev/keyless/demo/recommender/recommend]). It listens
// on loopback with mutual TLS, so only the keyless sidecar (holding the
// client certificate) reaches it, and logs one JSON line per request to
// stdout.
//
//	go run ./demo/certs -out .keyless-demo/secrets
//	go run ./demo/recommender -secrets .keyless-demo/secrets
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyless-dev/keyless/demo/internal/democa"
	"github.com/keyless-dev/keyless/demo/internal/serve"
	"github.com/keyless-dev/keyless/demo/recommender/recommend"
)

// command declares recommender's flags and returns what runs once they are
// parsed.
func command(fs *flag.FlagSet) func(context.Context, string) error {
	secrets := fs.String("secrets", ".keyless-demo/secrets", "directory written by demo/certs: certificates and the API key")
	return func(ctx context.Context, addr string) error {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("--addr %q: listen on a loopback IP address only", addr)
		}
		tlsCfg, err := recommend.ServerTLS(filepath.Join(*secrets, democa.RecommenderCert),
			filepath.Join(*secrets, democa.RecommenderKey), filepath.Join(*secrets, democa.CAFile), democa.ProxyCommonName)
		if err != nil {
			return err
		}
		key, err := os.ReadFile(filepath.Join(*secrets, democa.APIKeyFile))
		if err != nil {
			return fmt.Errorf("API key: %w", err)
		}
		logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
		s, err := recommend.New(recommend.Options{APIKey: strings.TrimSpace(string(key)), Log: logger})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := serve.NewServer(s.Handler())
		srv.TLSConfig = tlsCfg
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
		fmt.Fprintf(os.Stderr, "recommender: listening on https://%s (mutual TLS: only %q may connect)\n", ln.Addr(), democa.ProxyCommonName)
		return serve.Until(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") })
	}
}

func main() {
	serve.Main("recommender", serve.Flags{Addr: "127.0.0.1:8790", AddrUsage: "listen address (loopback only)"}, command)
}
