package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
)

// NewServer returns an http.Server for h with the listener settings of
// Config.Server: ReadHeaderTimeout against slowloris, MaxHeaderBytes (431
// beyond it), no WriteTimeout (it would cut open WebSockets; upstream
// timeouts bound responses instead).
func (p *Proxy) NewServer(h http.Handler) *http.Server {
	s := p.cfg.Server
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		// Requests derive from the proxy's base context, so Cut reaches
		// them, hijacked WebSockets included.
		BaseContext: func(net.Listener) context.Context { return p.base },
	}
}
