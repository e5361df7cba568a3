// Package certreload serves a TLS certificate from files that can change
// under a running server: a renewed Let's Encrypt certificate, a
// Kubernetes Secret whose mounted files are swapped, or an operator's
// `kill -HUP`. [Reloader.GetCertificate] plugs into tls.Config.
//
// A reload that fails (a half-written file, a key that does not match the
// certificate) keeps the certificate already loaded and reports the
// error through OnError: the server goes on with a certificate that
// worked rather than refusing every handshake. Start-up, though, fails
// closed: [New] returns the error and there is nothing to serve.
package certreload

import (
	"crypto/tls"
	"errors"
	"os"
	"sync"
	"time"
)

// Reloader holds the current certificate of a cert/key file pair.
type Reloader struct {
	certFile, keyFile string
	// Every is how often GetCertificate looks at the files' modification
	// times and sizes (default one second). A handshake never waits on
	// more than two stat calls.
	Every time.Duration
	// Now is the clock (tests inject theirs).
	Now func() time.Time
	// OnError is told of a failed reload (default: ignored).
	OnError func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   stamp
	checked time.Time
}

// stamp is what tells a changed file pair from the loaded one.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// New loads the pair once and returns its reloader, or the error.
func New(certFile, keyFile string) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certreload: both a certificate file and a key file are required")
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, Every: time.Second, Now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) statFiles() (stamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// Reload reads both files now (SIGHUP calls this). On error the loaded
// certificate stays.
func (r *Reloader) Reload() error {
	st, err := r.statFiles()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cert, r.stamp, r.checked = &c, st, r.Now()
	r.mu.Unlock()
	return nil
}

// maybeReload reloads when the files changed since the last load, at most
// once per Every.
func (r *Reloader) maybeReload() {
	r.mu.Lock()
	now := r.Now()
	if now.Sub(r.checked) < r.Every {
		r.mu.Unlock()
		return
	}
	r.checked = now
	old := r.stamp
	r.mu.Unlock()
	st, err := r.statFiles()
	if err == nil && st == old {
		return
	}
	if err == nil {
		err = r.Reload()
	}
	if err != nil && r.OnError != nil {
		r.OnError(err)
	}
}

// Certificate is the certificate served now.
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.maybeReload()
	return r.Certificate(), nil
}
