// Command wasm is the keyless browser client, built with GOOS=js
// GOARCH=wasm (make wasm). It installs one namespaced object,
// globalThis.keyless, and nothing else; web-component/keyless.js wraps it
// in the <keyless-login> element. The API is typed in
// web-component/keyless-wasm.d.ts.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
	"github.com/keyless-dev/keyless/wasm/client"
)

func main() {
	a := &app{}
	api := js.Global().Get("Object").New()
	api.Set("version", "1")
	api.Set("login", js.FuncOf(a.login))
	api.Set("fetch", js.FuncOf(a.fetch))
	api.Set("logout", js.FuncOf(a.logout))
	api.Set("restore", js.FuncOf(a.restore))
	api.Set("cancel", js.FuncOf(a.cancelLogin))
	api.Set("measureProofs", js.FuncOf(measureProofs))
	js.Global().Set("keyless", api)
	if ready := js.Global().Get("__keylessReady"); ready.Type() == js.TypeFunction {
		// keyless.js answers with the client's JavaScript half (see
		// fetchTransport).
		if h := ready.Invoke(api); h.Type() == js.TypeObject {
			jsHelpers = h
		}
	}
	select {} // serve callbacks forever; returning would end the module
}

type app struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // of the running login and renewal loop
	session *client.Session
	keyName string
	persist bool // keep the renewal token across reloads
	onEvent js.Value
}

// loginOptions are login's inputs.
type loginOptions struct {
	Issuer   string
	ClientID string
	Scope    []string
	API      []string // origins the lease may be sent to
	// Persist keeps the session's renewal token in IndexedDB beside the
	// key, so a reload signs in again without a new approval; false
	// (session="memory" on the element) keeps it in memory only.
	Persist bool
	// Vending, when set, is keyless (the vending service): Issuer is then
	// an external IdP whose device flow signs the user in, and its token
	// is exchanged at Vending for the lease. IdPScope is what is asked
	// of the IdP (default "openid").
	Vending  string
	IdPScope []string
	OnState  js.Value
	OnEvent  js.Value
}

func parseLoginOptions(v js.Value) (*loginOptions, error) {
	if v.Type() != js.TypeObject {
		return nil, typeError("options must be an object")
	}
	str := func(name string) (string, error) {
		x := v.Get(name)
		if x.Type() != js.TypeString || x.String() == "" {
			return "", typeError(`"` + name + `" must be a non-empty string`)
		}
		return x.String(), nil
	}
	o := &loginOptions{OnState: v.Get("onState"), OnEvent: v.Get("onEvent"), Persist: v.Get("persist").Type() != js.TypeBoolean || v.Get("persist").Bool()}
	var err error
	if o.Issuer, err = str("issuer"); err != nil {
		return nil, err
	}
	if o.ClientID, err = str("clientId"); err != nil {
		return nil, err
	}
	if s := v.Get("scope"); s.Type() == js.TypeString {
		o.Scope = strings.Fields(s.String())
	}
	switch vv := v.Get("vending"); vv.Type() {
	case js.TypeString:
		o.Vending = vv.String()
	case js.TypeUndefined, js.TypeNull:
	default:
		return nil, typeError(`"vending" must be a string`)
	}
	o.IdPScope = []string{"openid"}
	if s := v.Get("idpScope"); s.Type() == js.TypeString && strings.TrimSpace(s.String()) != "" {
		o.IdPScope = strings.Fields(s.String())
	}
	api := v.Get("api")
	switch api.Type() {
	case js.TypeString:
		o.API = strings.Fields(api.String())
	case js.TypeUndefined:
	default:
		return nil, typeError(`"api" must be a string of origins`)
	}
	if len(o.API) == 0 {
		return nil, typeError(`"api" must name the origin the lease is for`)
	}
	return o, nil
}

func (a *app) login(_ js.Value, args []js.Value) any {
	o, err := parseLoginOptions(arg0(args))
	if err != nil {
		return rejected(err)
	}
	return newPromise(func() (any, error) { return a.runLogin(o) })
}

func (a *app) runLogin(o *loginOptions) (any, error) {
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel() // a new login replaces any running one
	}
	a.cancel, a.onEvent = cancel, o.OnEvent
	a.keyName = "dpop|" + o.Issuer + "|" + o.ClientID
	a.mu.Unlock()

	state := func(m map[string]any) {
		if o.OnState.Type() == js.TypeFunction {
			o.OnState.Invoke(js.ValueOf(m))
		}
	}
	state(map[string]any{"status": "starting"})
	kp, persisted, err := loadOrCreateKey(a.keyName)
	if err != nil {
		return nil, err
	}
	signer, err := signerFromKeyPair(kp)
	if err != nil {
		return nil, err
	}
	tr := fetchTransport{}
	// signIn runs the device flow and returns the lease and the flow that
	// renews it: at keyless itself, or (with vending) at the external IdP
	// and then the exchange at keyless.
	var (
		start    func(context.Context) (*client.DeviceAuthorization, error)
		poll     func(context.Context, *client.DeviceAuthorization, func(client.State)) (*client.TokenResponse, error)
		exchange func(context.Context, *client.TokenResponse) (*client.TokenResponse, error)
		flow     *client.Flow
	)
	if o.Vending == "" {
		meta, err := client.Discover(ctx, tr, o.Issuer)
		if err != nil {
			return nil, err
		}
		flow = &client.Flow{Fetcher: &client.Fetcher{Signer: signer, Transport: tr}, Meta: meta, ClientID: o.ClientID}
		start = func(ctx context.Context) (*client.DeviceAuthorization, error) { return flow.Start(ctx, o.Scope) }
		poll = flow.Poll
		exchange = func(ctx context.Context, tok *client.TokenResponse) (*client.TokenResponse, error) {
			return flow.Exchange(ctx, tok.AccessToken, o.Scope)
		}
	} else {
		fed, err := client.NewFederated(ctx, tr, signer, o.Issuer, o.Vending, o.ClientID)
		if err != nil {
			return nil, err
		}
		flow = fed.Vending
		start = func(ctx context.Context) (*client.DeviceAuthorization, error) { return fed.Start(ctx, o.IdPScope) }
		poll = fed.Poll
		exchange = func(ctx context.Context, tok *client.TokenResponse) (*client.TokenResponse, error) {
			return fed.Lease(ctx, tok, o.Scope)
		}
	}
	da, err := start(ctx)
	if err != nil {
		return nil, err
	}
	complete := da.VerificationURIComplete
	if complete == "" {
		complete = da.VerificationURI
	}
	qr, err := qrSVG(complete)
	if err != nil {
		return nil, err
	}
	state(map[string]any{
		"status":                  "code",
		"userCode":                da.UserCode,
		"verificationUri":         da.VerificationURI,
		"verificationUriComplete": complete,
		"qr":                      "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(qr)),
		"expiresIn":               da.ExpiresIn,
	})
	tok, err := poll(ctx, da, func(s client.State) {
		state(map[string]any{"status": s.Status, "secondsLeft": s.SecondsLeft, "userCode": da.UserCode})
	})
	if err != nil {
		return nil, err
	}
	state(map[string]any{"status": "approved"})
	lease, err := exchange(ctx, tok)
	// The login token (an external IdP's included) is needed only for
	// the exchange: drop it now, keep only the lease.
	tok = nil
	if err != nil {
		return nil, err
	}
	return a.start(ctx, flow, lease, o, signer.PublicJWK().Thumbprint(), persisted, false), nil
}

// start installs a signed-in session: renewal before each expiry and, when
// the page keeps sessions and the key is stored, the current renewal token
// beside the key.
func (a *app) start(ctx context.Context, flow *client.Flow, lease *client.TokenResponse, o *loginOptions, jkt string, persisted, restored bool) js.Value {
	sess := &client.Session{Flow: flow, Origins: o.API}
	sess.Set(lease, time.Now())
	keep := o.Persist && persisted
	a.mu.Lock()
	a.session, a.persist = sess, keep
	name := a.keyName
	a.mu.Unlock()
	keepToken := func() {
		if keep {
			_ = saveRenewal(name, sess.RenewalToken())
		}
	}
	keepToken()
	go sess.Run(ctx, func() {
		keepToken()
		a.event(map[string]any{"type": "renewed", "expiresAt": sess.Expires().UnixMilli()})
	}, func(err error) {
		if keep {
			_ = saveRenewal(name, "")
		}
		a.event(map[string]any{"type": "renewal_failed", "code": errorCode(err), "message": err.Error()})
	})

	claims := peekClaims(lease.AccessToken)
	return js.ValueOf(map[string]any{
		"subject":       claims.Sub,
		"scope":         lease.Scope,
		"expiresAt":     sess.Expires().UnixMilli(),
		"jkt":           jkt,
		"preview":       claims.Preview,
		"keyPersistent": persisted,
		"restored":      restored,
	})
}

// restore(options) resumes the session kept by an earlier page: with the
// stored key and renewal token it renews the lease (a DPoP-bound,
// single-use refresh, RFC 9449 section 5) and resolves with the session as
// login does; with nothing kept, or a token the server refuses (revoked,
// expired, used), it forgets the token and resolves with null.
func (a *app) restore(_ js.Value, args []js.Value) any {
	o, err := parseLoginOptions(arg0(args))
	if err != nil {
		return rejected(err)
	}
	return newPromise(func() (any, error) {
		if !o.Persist {
			return nil, nil
		}
		name := "dpop|" + o.Issuer + "|" + o.ClientID
		kp, ok := loadKey(name)
		if !ok {
			return nil, nil
		}
		tok := loadRenewal(name)
		if tok == "" {
			return nil, nil
		}
		signer, err := signerFromKeyPair(kp)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		a.mu.Lock()
		if a.cancel != nil || a.session != nil {
			a.mu.Unlock()
			cancel()
			return nil, nil // a sign-in started meanwhile: it wins
		}
		a.cancel, a.onEvent, a.keyName = cancel, o.OnEvent, name
		a.mu.Unlock()
		fail := func() {
			cancel()
			a.mu.Lock()
			a.cancel = nil
			a.mu.Unlock()
		}
		tr := fetchTransport{}
		meta, err := client.Discover(ctx, tr, o.Issuer)
		if err != nil {
			fail()
			return nil, err
		}
		flow := &client.Flow{Fetcher: &client.Fetcher{Signer: signer, Transport: tr}, Meta: meta, ClientID: o.ClientID}
		lease, err := flow.Refresh(ctx, tok)
		if err != nil {
			fail()
			var oe *client.OAuthError
			if errors.As(err, &oe) {
				// Refused for good: nothing to resume.
				_ = saveRenewal(name, "")
				return nil, nil
			}
			return nil, err
		}
		return a.start(ctx, flow, lease, o, signer.PublicJWK().Thumbprint(), true, true), nil
	})
}

func (a *app) event(m map[string]any) {
	a.mu.Lock()
	cb := a.onEvent
	a.mu.Unlock()
	if cb.Type() == js.TypeFunction {
		cb.Invoke(js.ValueOf(m))
	}
}

// peekClaims reads display-only claims from the lease. The client does not
// verify its own lease (the proxy does); nothing here decides access.
func peekClaims(jwt string) (c struct {
	Sub     string `json:"sub"`
	Preview bool   `json:"preview"`
}) {
	parts := strings.Split(jwt, ".")
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			c.Sub, c.Preview = client.JWTClaims(b)
		}
	}
	return c
}

func (a *app) cancelLogin(js.Value, []js.Value) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil && a.session == nil {
		a.cancel()
		a.cancel = nil
	}
	return nil
}

// fetch(url, {method, headers, body}) sends a request with the lease and a
// fresh DPoP proof. Bodies must be strings or bytes: a one-shot stream could
// not be replayed after a nonce challenge, so it is refused.
func (a *app) fetch(_ js.Value, args []js.Value) any {
	if len(args) == 0 || args[0].Type() != js.TypeString {
		return rejected(typeError(`"url" must be a string`))
	}
	// Resolve relative URLs the way the page's own fetch would.
	u := js.Global().Get("URL").New(args[0].String(), js.Global().Get("location").Get("href")).Get("href").String()
	req := &client.Request{Method: "GET", URL: u, Header: map[string]string{}}
	if len(args) > 1 && args[1].Type() == js.TypeObject {
		init := args[1]
		if m := init.Get("method"); m.Type() == js.TypeString {
			req.Method = strings.ToUpper(m.String())
		}
		if h := init.Get("headers"); h.Type() == js.TypeObject {
			entries := js.Global().Get("Headers").New(h)
			each := js.FuncOf(func(_ js.Value, kv []js.Value) any {
				req.Header[kv[1].String()] = kv[0].String()
				return nil
			})
			entries.Call("forEach", each)
			each.Release()
		}
		switch b := init.Get("body"); {
		case b.Type() == js.TypeString:
			req.Body = []byte(b.String())
		case b.InstanceOf(js.Global().Get("Uint8Array")):
			req.Body = make([]byte, b.Get("length").Int())
			js.CopyBytesToGo(req.Body, b)
		case b.InstanceOf(js.Global().Get("ArrayBuffer")):
			u8 := js.Global().Get("Uint8Array").New(b)
			req.Body = make([]byte, u8.Get("length").Int())
			js.CopyBytesToGo(req.Body, u8)
		case b.Type() == js.TypeUndefined || b.Type() == js.TypeNull:
		default:
			return rejected(typeError(`"body" must be a string, ArrayBuffer or Uint8Array`))
		}
	}
	a.mu.Lock()
	sess := a.session
	a.mu.Unlock()
	return newPromise(func() (any, error) {
		if sess == nil {
			return nil, client.ErrNoLease
		}
		resp, err := sess.Fetch(context.Background(), req)
		if err != nil {
			return nil, err
		}
		headers := map[string]any{}
		for k, v := range resp.Header {
			headers[k] = strings.Join(v, ", ")
		}
		body := js.Global().Get("Uint8Array").New(len(resp.Body))
		js.CopyBytesToJS(body, resp.Body)
		return js.ValueOf(map[string]any{"status": resp.Status, "headers": headers, "body": body}), nil
	})
}

// logout({forget}) stops renewal, revokes the renewal token and the lease
// at the server (RFC 7009), forgets them, and with forget also deletes the
// stored key. The lease is forgotten even if the server cannot be reached.
func (a *app) logout(_ js.Value, args []js.Value) any {
	forget := len(args) > 0 && args[0].Type() == js.TypeObject && args[0].Get("forget").Truthy()
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	sess, name := a.session, a.keyName
	a.session, a.cancel = nil, nil
	a.mu.Unlock()
	return newPromise(func() (any, error) {
		var err error
		if sess != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = sess.Revoke(ctx)
			cancel()
		}
		// Signed out: the kept renewal token goes, whatever forget says.
		if name != "" {
			_ = saveRenewal(name, "")
		}
		if forget && name != "" {
			// Nothing stored where there is no storage: not an error.
			if derr := deleteKey(name); err == nil && !errors.Is(derr, errStorageUnavailable) {
				err = derr
			}
		}
		return nil, err
	})
}

func typeError(msg string) error { return &jsTypeError{msg} }

type jsTypeError struct{ msg string }

func (e *jsTypeError) Error() string { return "keyless: " + e.msg }

func rejected(err error) js.Value {
	return js.Global().Get("Promise").Call("reject", toJSError(err))
}

// toJSError turns an error into an Error with a stable code; TypeErrors
// for bad inputs, as the page's own API misuse deserves.
func toJSError(err error) js.Value {
	var te *jsTypeError
	if errors.As(err, &te) {
		e := js.Global().Get("TypeError").New(err.Error())
		e.Set("code", "invalid_argument")
		return e
	}
	return jsError(errorCode(err), err.Error())
}

func errorCode(err error) string {
	var oe *client.OAuthError
	switch {
	case errors.Is(err, client.ErrDenied):
		return "access_denied"
	case errors.Is(err, client.ErrExpired):
		return "expired_token"
	case errors.Is(err, client.ErrNotDPoP):
		return "not_dpop_bound"
	case errors.Is(err, client.ErrNotBearer):
		return "not_bearer"
	case errors.Is(err, client.ErrIdPCORS):
		return "idp_cors"
	case errors.Is(err, client.ErrOriginNotAllowed):
		return "origin_not_allowed"
	case errors.Is(err, client.ErrNoLease):
		return "not_signed_in"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, errStorageUnavailable):
		return "storage_unavailable"
	case errors.As(err, &oe):
		return oe.Code
	}
	return "error"
}

// measureProofs(n) makes n proofs the way every request makes its own (see
// fetchTransport): Go builds the signing input with proof.SigningInput,
// and the JavaScript half signs it with a fresh, non-extractable, unstored
// WebCrypto key and assembles the proof. It resolves with
// {times, proof}: each proof's milliseconds, from building to the finished
// proof, and the last proof, for the caller to verify (make bench reports
// the median and p95). Here the JavaScript half calls into Go for each
// input, a crossing a request does not make, so the figure is an upper
// bound.
func measureProofs(_ js.Value, args []js.Value) any {
	n := 100
	if len(args) > 0 && args[0].Type() == js.TypeNumber {
		n = min(max(args[0].Int(), 1), 10000)
	}
	return newPromise(func() (any, error) {
		h := helpers()
		if !h.Truthy() {
			return nil, errors.New("keyless: measureProofs needs the module loaded by keyless.js")
		}
		kp, err := generateKeyPair()
		if err != nil {
			return nil, err
		}
		signer, err := signerFromKeyPair(kp)
		if err != nil {
			return nil, err
		}
		build := js.FuncOf(func(js.Value, []js.Value) any {
			input, err := proof.SigningInput(signer, "GET", "https://api.example.test/v1/things", proof.Options{AccessToken: "token"})
			if err != nil {
				return js.Null()
			}
			return bytesToJS(input)
		})
		defer build.Release()
		return await(h.Call("measureProofs", n, signer.priv, build))
	})
}
