package recommend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ProxyCommonName is the subject common name of the sidecar's client
// certificate, the only peer the recommender talks to.
const ProxyCommonName = "keyless-proxy"

// ServerTLS is the recommender's TLS configuration: its own certificate,
// TLS 1.3, and a required client certificate signed by the CA in caFile
// whose common name is peerCN (mutual TLS: only the sidecar connects).
func ServerTLS(certFile, keyFile, caFile, peerCN string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("recommend: server certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("recommend: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("recommend: client CA: no certificate in " + caFile)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != peerCN {
				return fmt.Errorf("recommend: client certificate is not %q", peerCN)
			}
			return nil
		},
	}, nil
}
