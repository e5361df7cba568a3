// Command certs writes the Where2Eat demo's throwaway secrets into a
// directory: a CA certificate (the CA key is never written), the
// recommender's server certificate, the sidecar's client certificate and
// the recommender's data-source API key. make demo runs it on every start;
// nothing it writes is committed.
//
//	go run ./demo/certs -out .keyless-demo/secrets
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/keyless-dev/keyless/demo/internal/democa"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	out := fs.String("out", ".keyless-demo/secrets", "directory to write into (created 0700)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := democa.Generate()
	if err != nil {
		return err
	}
	if err := b.WriteDir(*out); err != nil {
		return err
	}
	fmt.Printf("certs: wrote a throwaway CA certificate, the recommender's and the proxy's mTLS certificates and the data-source API key to %s\n", *out)
	return nil
}
