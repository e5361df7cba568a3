// Package democa makes the Where2Eat demo's throwaway secrets at run time:
// a CA that lives only in memory, the recommender's server certificate,
// the sidecar's client certificate (mutual TLS), and the recommender's
// data-source API key. Nothing it makes is ever committed.
//
// Use [Generate], then [Bundle.WriteDir].
package democa

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the files [Bundle.WriteDir] writes.
const (
	CAFile              = "ca.pem"
	RecommenderCert     = "recommender.pem"
	RecommenderKey      = "recommender-key.pem"
	ProxyCert           = "proxy.pem"
	ProxyKey            = "proxy-key.pem"
	APIKeyFile          = "api-key"
	ProxyCommonName     = "keyless-proxy"
	ServerCommonName    = "where2eat-recommender"
	certificateLifetime = 24 * time.Hour
)

// Bundle is one set of demo secrets, PEM-encoded.
type Bundle struct {
	CA                    []byte // the CA certificate (its key is never written)
	ServerCert, ServerKey []byte
	ClientCert, ClientKey []byte
	APIKey                string

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// Generate makes a fresh CA, a server certificate for 127.0.0.1 and
// localhost, a client certificate for the proxy, and an API key.
func Generate() (*Bundle, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Where2Eat demo CA (throwaway)"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certificateLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	b := &Bundle{CA: pemBlock("CERTIFICATE", der), caCert: caCert, caKey: caKey}
	if b.ServerCert, b.ServerKey, err = b.Issue(ServerCommonName, false); err != nil {
		return nil, err
	}
	if b.ClientCert, b.ClientKey, err = b.Issue(ProxyCommonName, true); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	b.APIKey = "w2e_" + base64.RawURLEncoding.EncodeToString(k)
	return b, nil
}

// Issue signs a leaf certificate with the bundle's CA: a client
// certificate with common name cn, or a server certificate for 127.0.0.1,
// ::1 and localhost.
func (b *Bundle) Issue(cn string, client bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(certificateLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.caCert, &key.PublicKey, b.caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder), nil
}

// WriteDir writes the bundle's files into dir (created 0700); keys and the
// API key are 0600.
func (b *Bundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CAFile, b.CA, 0o644},
		{RecommenderCert, b.ServerCert, 0o644},
		{RecommenderKey, b.ServerKey, 0o600},
		{ProxyCert, b.ClientCert, 0o644},
		{ProxyKey, b.ClientKey, 0o600},
		{APIKeyFile, []byte(b.APIKey + "\n"), 0o600},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return fmt.Errorf("democa: %w", err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // an existing file keeps its mode otherwise
			return fmt.Errorf("democa: %w", err)
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
