package certreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a fresh self-signed certificate for cn and its key,
// with the given modification time, and returns the certificate's DER.
func writePair(t *testing.T, dir, cn string, mod time.Time) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), mod)
	write(t, filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), mod)
	return der
}

func write(t *testing.T, p string, b []byte, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func cn(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.Subject.CommonName
}

func TestReloadOnFileChangeAfterInterval(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writePair(t, dir, "one.test", t0)
	r, err := New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	r.Now = func() time.Time { return now }
	r.checked = now
	var errs []error
	r.OnError = func(err error) { errs = append(errs, err) }

	steps := []struct {
		name    string
		do      func()
		want    string
		wantErr int
	}{
		{"unchanged", func() { now = now.Add(2 * time.Second) }, "one.test", 0},
		{"changed, interval not yet passed", func() { writePair(t, dir, "two.test", t0.Add(time.Minute)); now = now.Add(500 * time.Millisecond) }, "one.test", 0},
		{"interval passed", func() { now = now.Add(time.Second) }, "two.test", 0},
		{"key no longer matches: keep the old pair", func() {
			// A new certificate with the old key's file left in place.
			key, _ := os.ReadFile(filepath.Join(dir, "tls.key"))
			writePair(t, dir, "three.test", t0.Add(2*time.Minute))
			write(t, filepath.Join(dir, "tls.key"), key, t0.Add(2*time.Minute))
			now = now.Add(2 * time.Second)
		}, "two.test", 1},
		{"half-written file: keep the old pair", func() {
			write(t, filepath.Join(dir, "tls.crt"), []byte("-----BEGIN CERT"), t0.Add(3*time.Minute))
			now = now.Add(2 * time.Second)
		}, "two.test", 2},
		{"file removed: keep the old pair", func() {
			os.Remove(filepath.Join(dir, "tls.crt"))
			now = now.Add(2 * time.Second)
		}, "two.test", 3},
		{"fixed", func() { writePair(t, dir, "four.test", t0.Add(4*time.Minute)); now = now.Add(2 * time.Second) }, "four.test", 3},
	}
	for _, s := range steps {
		s.do()
		if got := cn(t, r); got != s.want {
			t.Errorf("%s: serving %s, want %s", s.name, got, s.want)
		}
		if len(errs) != s.wantErr {
			t.Errorf("%s: %d reload errors, want %d (%v)", s.name, len(errs), s.wantErr, errs)
		}
	}
}

func TestExplicitReload(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writePair(t, dir, "one.test", t0)
	r, err := New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	r.Every = time.Hour // only Reload (SIGHUP) can pick the change up
	writePair(t, dir, "two.test", t0)
	if got := cn(t, r); got != "one.test" {
		t.Fatalf("before Reload: %s", got)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := cn(t, r); got != "two.test" {
		t.Fatalf("after Reload: %s, want two.test", got)
	}
}

func TestNewFailsClosed(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "one.test", time.Now())
	garbage := filepath.Join(dir, "garbage")
	write(t, garbage, []byte("not pem"), time.Now())
	for _, tc := range []struct{ name, cert, key string }{
		{"no files named", "", ""},
		{"missing cert", filepath.Join(dir, "nope"), filepath.Join(dir, "tls.key")},
		{"garbage key", filepath.Join(dir, "tls.crt"), garbage},
	} {
		if _, err := New(tc.cert, tc.key); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}
