package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// AuditSink is the health of the writer behind Options.Logger, e.g. an
// auditlog.Queue or several.
type AuditSink interface {
	// Err is nil while every audit line was written, else why not.
	Err() error
	// Failures counts the audit lines lost so far.
	Failures() uint64
}

// checkAudit refuses to act unaudited: while the audit log cannot be
// written and audit.on_failure is refuse, every request is answered 503
// (its own audit line is attempted, and a line that gets through clears
// the failure).
func (p *Proxy) checkAudit() *Error {
	if p.auditSink == nil || p.cfg.Audit.OnFailure != AuditRefuse {
		return nil
	}
	if err := p.auditSink.Err(); err != nil {
		return &Error{Code: CodeUnavailable, Msg: "audit log unavailable", Err: err, Rule: "audit", RetryAfter: time.Second}
	}
	return nil
}

// track counts a request in flight until done is called, so a stopping
// proxy can wait for (or cut) every request and each writes its audit
// line.
func (p *Proxy) track() (done func()) {
	p.inflight.Add(1)
	p.active.Add(1)
	return func() {
		p.active.Add(-1)
		p.inflight.Done()
	}
}

// Wait returns once no request is in flight (each has written its audit
// line), or with ctx's error. Call it after the server stopped accepting
// (http.Server.Shutdown): hijacked connections (WebSockets) are not
// waited for by Shutdown, but are here.
func (p *Proxy) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cut cancels every request still in flight (slow upstreams, open
// WebSockets): each ends with an error answer or a closed tunnel, and is
// audited. It reports how many were running. Requests are canceled only
// if they run on a server from [Proxy.NewServer] or under a context from
// [Proxy.BaseContext].
func (p *Proxy) Cut() int64 {
	n := p.active.Load()
	p.cut()
	return n
}

// BaseContext is the context requests must derive from for [Proxy.Cut]
// to reach them (http.Server.BaseContext).
func (p *Proxy) BaseContext() context.Context { return p.base }

// LimitListener caps the client connections open at once at
// Config.Server.MaxConns: past it Accept waits for one to close, so idle or
// slow clients (slowloris) cannot hold unbounded memory; the kernel's
// backlog queues the rest. Serve the proxy on the listener it returns.
func (p *Proxy) LimitListener(ln net.Listener) net.Listener {
	n := p.cfg.Server.MaxConns
	if n <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
