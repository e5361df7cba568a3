package proxy

import (
	"net/http"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// headerMatcher matches header names in any spelling ([check.HeaderMatcher]).
type headerMatcher struct{ check.HeaderMatcher }

func (m *headerMatcher) addName(n ...string) { m.AddName(n...) }

func (m *headerMatcher) match(name string) bool { return m.Match(name) }

// deleteMatching removes every header m matches, keeping those in keep.
func (m *headerMatcher) deleteMatching(h http.Header, keep *headerMatcher) {
	var k *check.HeaderMatcher
	if keep != nil {
		k = &keep.HeaderMatcher
	}
	m.DeleteMatching(h, k)
}

// requestStripList is every inbound header never forwarded
// ([check.RequestStripList]).
func requestStripList(h Headers) headerMatcher { return headerMatcher{check.RequestStripList(h)} }

// responseStripList is every upstream response header never returned
// ([check.ResponseStripList]).
func responseStripList(h Headers) headerMatcher { return headerMatcher{check.ResponseStripList(h)} }
