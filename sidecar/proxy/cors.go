package proxy

import (
	"net/http"
	"strconv"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// exposeHeaders must be readable by browser code (RFC 9449 sections 7.1
// and 8).
const exposeHeaders = check.ExposeHeaders

// isPreflight reports a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight itself; it is never forwarded. The
// origin must belong to some app (which app is known only once a lease is
// presented; checkOrigin then narrows it).
func (p *Proxy) preflight(x *exchange) *Error {
	origin := x.r.Header.Get("Origin")
	if err := p.origins.Preflight(origin); err != nil {
		return err
	}
	h := x.w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", check.PreflightAllowMethods)
	// The DPoP header forces this preflight (not CORS-safelisted).
	h.Set("Access-Control-Allow-Headers", check.PreflightAllowHeaders)
	h.Set("Access-Control-Expose-Headers", exposeHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(p.cfg.CORS.MaxAge.Seconds())))
	x.w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkOrigin refuses a request whose Origin is not one of the lease's app
// origins: per-app CORS, and Cross-Site WebSocket Hijacking protection on
// upgrades (RFC 6455 section 10.2). Requests without Origin (non-browser
// clients) pass.
func (p *Proxy) checkOrigin(x *exchange) *Error {
	return p.origins.Check(x.claims.ClientID, x.r.Header.Get("Origin"))
}

// corsAllow sets the CORS response headers when the request's Origin may
// read the response: the lease's app origins once a lease is known, any
// app's origin before.
func (p *Proxy) corsAllow(x *exchange) { p.corsHeaders(x, x.w.Header()) }

// corsHeaders is corsAllow on a given header map.
func (p *Proxy) corsHeaders(x *exchange, h http.Header) {
	origin := x.r.Header.Get("Origin")
	app := ""
	if x.claims != nil {
		app = x.claims.ClientID
	}
	if !p.origins.Allow(origin, app, x.claims != nil) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", exposeHeaders)
}
