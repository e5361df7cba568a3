package recommend

import (
	"log/slog"
	"net/http"
)

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests writes one JSON line per request: what the sidecar said
// about the caller, which TLS client certificate connected, whether the
// API key arrived (never its value), and whether any user credential
// leaked through (Authorization, DPoP, Cookie: all must be false).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		peer := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("query", r.URL.RawQuery),
			slog.Int("status", rec.status),
			slog.String("peer_cert", peer),
			slog.String("sub", r.Header.Get(HeaderSub)),
			slog.String("client", r.Header.Get(HeaderClient)),
			slog.String("scope", r.Header.Get(HeaderScope)),
			slog.String("lease", r.Header.Get(HeaderLease)),
			slog.Bool("api_key_present", r.Header.Get(HeaderAPIKey) != ""),
			slog.Bool("saw_authorization", r.Header.Get("Authorization") != ""),
			slog.Bool("saw_dpop", r.Header.Get("DPoP") != ""),
			slog.Bool("saw_cookie", r.Header.Get("Cookie") != ""),
			slog.String("user_agent", r.Header.Get("User-Agent")),
			slog.Duration("took", s.now().Sub(start)),
		)
	})
}
