package authserver

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestClientIP(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "127.0.0.1/32", "2001:db8:1::/48")
	tests := []struct {
		name    string
		remote  string
		trusted []netip.Prefix
		hdr     []string // name, value pairs, each a separate field
		want    string
	}{
		// No trusted proxies: headers are never read.
		{"no setting, no header", "192.0.2.7:4000", nil, nil, "192.0.2.7"},
		{"no setting, XFF ignored", "192.0.2.7:4000", nil, []string{"X-Forwarded-For", "198.51.100.1"}, "192.0.2.7"},
		{"no setting, Forwarded ignored", "192.0.2.7:4000", nil, []string{"Forwarded", "for=198.51.100.1"}, "192.0.2.7"},
		{"no setting, peer without port", "192.0.2.7", nil, nil, "192.0.2.7"},
		// An untrusted peer: headers are never read.
		{"untrusted peer, XFF ignored", "192.0.2.7:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1"}, "192.0.2.7"},
		{"untrusted peer that claims a trusted hop", "192.0.2.7:4000", trusted, []string{"X-Forwarded-For", "10.0.0.1"}, "192.0.2.7"},
		{"unparsable peer", "@:0", trusted, []string{"X-Forwarded-For", "198.51.100.1"}, "@"},
		// A trusted peer.
		{"trusted peer, no header", "10.1.2.3:4000", trusted, nil, "10.1.2.3"},
		{"one hop", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"IPv6 loopback peer trusted by IPv6 prefix", "[2001:db8:1::5]:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"spoofed left entries ignored", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped from the right", "127.0.0.1:4000", trusted, []string{"X-Forwarded-For", "203.0.113.9, 198.51.100.1, 10.9.9.9, 10.0.0.2"}, "198.51.100.1"},
		{"every hop trusted: leftmost", "127.0.0.1:4000", trusted, []string{"X-Forwarded-For", "10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"several fields are one list", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"IPv6 client", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "2001:db8:2::1"}, "2001:db8:2::1"},
		{"IPv4-mapped client unmapped", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "::ffff:198.51.100.1"}, "198.51.100.1"},
		{"XFF with ports", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "[2001:db8:2::1]:443, 10.0.0.2:80"}, "2001:db8:2::1"},
		{"XFF bracketed IPv6 without port", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "[2001:db8:2::1]"}, "2001:db8:2::1"},
		{"XFF tabs and empty elements", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "\t198.51.100.1 ,, 10.0.0.2"}, "198.51.100.1"},
		// Malformed: the peer.
		{"XFF empty", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", ""}, "10.1.2.3"},
		{"XFF only commas", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", " , ,"}, "10.1.2.3"},
		{"XFF garbage on the walk", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1, unknown"}, "10.1.2.3"},
		{"XFF garbage left of the client is never read", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "unknown, 198.51.100.1"}, "198.51.100.1"},
		{"XFF hostname", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "evil.example"}, "10.1.2.3"},
		{"XFF zone", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "fe80::1%eth0"}, "10.1.2.3"},
		{"XFF bracketed IPv4", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "[198.51.100.1]"}, "10.1.2.3"},
		{"XFF quoted", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", `"198.51.100.1"`}, "10.1.2.3"},
		{"XFF unterminated quote", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", `"198.51.100.1, 10.0.0.2`}, "10.1.2.3"},
		{"XFF chain too long", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", strings.Repeat("10.0.0.9, ", maxForwardedHops) + "198.51.100.1"}, "10.1.2.3"},
		{"XFF chain at the bound", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", strings.Repeat("10.0.0.9, ", maxForwardedHops-1) + "198.51.100.1"}, "198.51.100.1"},
		// Forwarded (RFC 7239).
		{"Forwarded one hop", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=198.51.100.1;proto=https"}, "198.51.100.1"},
		{"Forwarded names case-insensitive", "10.1.2.3:4000", trusted, []string{"Forwarded", "For=198.51.100.1"}, "198.51.100.1"},
		{"Forwarded quoted IPv6 with port", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"Forwarded quoted IPv4 with port", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="198.51.100.1:8080";by=10.0.0.1`}, "198.51.100.1"},
		{"Forwarded obfuscated port", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="198.51.100.1:_p1"`}, "198.51.100.1"},
		{"Forwarded chain", "127.0.0.1:4000", trusted, []string{"Forwarded", `for=203.0.113.9, for=198.51.100.1;by=10.0.0.1, for="10.0.0.2"`}, "198.51.100.1"},
		{"Forwarded comma inside quotes", "10.1.2.3:4000", trusted, []string{"Forwarded", `for=198.51.100.1;x="a,b"`}, "198.51.100.1"},
		{"Forwarded every hop trusted", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=10.0.0.5, for=10.0.0.6"}, "10.0.0.5"},
		{"Forwarded unknown", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=unknown"}, "10.1.2.3"},
		{"Forwarded obfuscated node", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=_hidden"}, "10.1.2.3"},
		{"Forwarded without for", "10.1.2.3:4000", trusted, []string{"Forwarded", "proto=https;by=10.0.0.1"}, "10.1.2.3"},
		{"Forwarded for twice", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=198.51.100.1;for=198.51.100.2"}, "10.1.2.3"},
		{"Forwarded unquoted IPv6", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=[2001:db8::1]"}, "10.1.2.3"},
		{"Forwarded unquoted port", "10.1.2.3:4000", trusted, []string{"Forwarded", "for=198.51.100.1:80"}, "10.1.2.3"},
		{"Forwarded bad port", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="198.51.100.1:80x"`}, "10.1.2.3"},
		{"Forwarded empty port", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="198.51.100.1:"`}, "10.1.2.3"},
		{"Forwarded IPv6 without brackets", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="2001:db8::1"`}, "10.1.2.3"},
		{"Forwarded bracketed IPv4", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="[198.51.100.1]"`}, "10.1.2.3"},
		{"Forwarded pair without value", "10.1.2.3:4000", trusted, []string{"Forwarded", "for"}, "10.1.2.3"},
		{"Forwarded unterminated quote", "10.1.2.3:4000", trusted, []string{"Forwarded", `for="198.51.100.1`}, "10.1.2.3"},
		{"Forwarded empty", "10.1.2.3:4000", trusted, []string{"Forwarded", ""}, "10.1.2.3"},
		// Both headers: ambiguous, the peer.
		{"both headers", "10.1.2.3:4000", trusted, []string{"X-Forwarded-For", "198.51.100.1", "Forwarded", "for=203.0.113.9"}, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				h.Add(tt.hdr[i], tt.hdr[i+1])
			}
			if got := clientIP(tt.remote, h, tt.trusted); got != tt.want {
				t.Errorf("clientIP(%q, %q) = %q, want %q", tt.remote, tt.hdr, got, tt.want)
			}
		})
	}
}

// FuzzClientIP: never panics, never empty, and the answer is either the
// peer or an address that one of the headers spelled; an untrusted peer
// always gets itself.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:4000", "203.0.113.9, 198.51.100.1, 10.0.0.2", "")
	f.Add("10.1.2.3:4000", "", `for=203.0.113.9, for="[2001:db8:cafe::17]:4711";by=10.0.0.1`)
	f.Add("192.0.2.7:1", "198.51.100.1", "for=198.51.100.1")
	f.Add("[::1]:80", "[2001:db8::1]:443", `for="\"x\\"`)
	trusted := mustPrefixes(f, "10.0.0.0/8", "::1/128")
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			h.Set("Forwarded", fwd)
		}
		got := clientIP(remote, h, trusted)
		peer := clientIP(remote, nil, nil)
		if peer != clientIP(remote, h, nil) {
			t.Fatalf("headers read without trusted proxies")
		}
		if got == peer {
			return
		}
		if remote != "" && got == "" {
			t.Fatalf("empty client address for peer %q", remote)
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("clientIP = %q: not a plain address", got)
		}
		pa, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(pa.WithZone(""), trusted) {
			t.Fatalf("untrusted peer %q gave %q", peer, got)
		}
		if xff != "" && fwd != "" {
			t.Fatalf("both headers gave %q, want the peer", got)
		}
	})
}
