package lease

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Operator revocations (keyless revoke), with the semantics of
// docs/revocation.md:
//
//   - a lease id ends exactly that lease family (and refuses an id that
//     names no active lease, so a typo is not reported as done);
//   - a subject, app or key ends everything issued to it up to now: a
//     watermark. New sign-ins afterwards work;
//   - Block bans a subject, app or key for a while: a watermark in the
//     future, so whatever is issued before it ends, new sign-ins included.
//     Unblock lifts it, keeping what was issued until now revoked.

// AdminRevoke is an operator's revocation.
type AdminRevoke struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	// Block, for a subject, app or key, bans it for this long.
	Block time.Duration `json:"block,omitempty"`
	// Unblock, for a subject, app or key, lifts a block.
	Unblock bool `json:"unblock,omitempty"`
	// Issuer, for a subject, names the external issuer (vending.issuers[].name)
	// whose subject it is; empty means keyless's own users
	// (docs/identity-providers.md).
	Issuer string `json:"issuer,omitempty"`
}

// AdminResult says what an operator's revocation did.
type AdminResult struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	// Ended is how many active leases it ended.
	Ended int `json:"ended"`
	// Cutoff is the watermark: what was issued before it is revoked.
	Cutoff time.Time `json:"cutoff,omitzero"`
	// BlockedUntil is set for a block.
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
	Unblocked    bool      `json:"unblocked,omitempty"`
	// Issuer is the external issuer of a subject, as asked.
	Issuer string `json:"issuer,omitempty"`
}

// errUnknownLease is the refusal of an operator revocation of a lease id
// that names no active lease.
var errUnknownLease = &Error{Status: http.StatusNotFound, Code: CodeInvalidRequest, Msg: "no active lease has this id (see keyless leases)"}

// Revoke records an administrative revocation of a lease id
// (store.KindLease), subject (KindSub), app (KindClient) or key
// thumbprint (KindJKT). by names the operator for the audit line.
func (s *Service) Revoke(ctx context.Context, kind store.Kind, value, by string) error {
	_, err := s.AdminRevoke(ctx, AdminRevoke{Kind: kind, Value: value}, by)
	return err
}

// AdminRevoke performs an operator's revocation; it returns once the
// revocation is durable in the log (docs/revocation.md).
func (s *Service) AdminRevoke(ctx context.Context, in AdminRevoke, by string) (*AdminResult, error) {
	switch in.Kind {
	case store.KindLease, store.KindSub, store.KindClient, store.KindJKT:
	default:
		return nil, oauthErr(CodeInvalidRequest, "kind must be lease, sub, client or jkt")
	}
	if in.Value == "" || len(in.Value) > 512 {
		return nil, oauthErr(CodeInvalidRequest, "value is required")
	}
	if in.Kind == store.KindLease && (in.Block != 0 || in.Unblock) {
		return nil, oauthErr(CodeInvalidRequest, "block and unblock apply to a subject, app or key")
	}
	if in.Block < 0 || in.Block > store.WatermarkHorizon-time.Hour || (in.Block != 0 && in.Unblock) {
		return nil, oauthErr(CodeInvalidRequest, "block must be a positive duration of at most 7 days, without unblock")
	}
	key := in.Value
	if in.Issuer != "" {
		// An external subject: namespaced by its issuer's name.
		switch {
		case in.Kind != store.KindSub:
			return nil, oauthErr(CodeInvalidRequest, "issuer goes only with kind sub")
		case !s.externalIssuer(in.Issuer):
			return nil, oauthErr(CodeInvalidRequest, "issuer names no configured external issuer")
		}
		key = store.SubjectValue(in.Issuer, in.Value)
	}
	now := s.now()
	active, err := s.ListActive(ctx, "", "")
	if err != nil {
		return nil, err
	}
	matches := func(a Active) bool {
		switch in.Kind {
		case store.KindLease:
			return a.LeaseID == in.Value
		case store.KindSub:
			return store.SubjectValue(a.IdP, a.Subject) == key
		case store.KindClient:
			return a.ClientID == in.Value
		default:
			return a.JKT == in.Value
		}
	}
	res := &AdminResult{Kind: in.Kind, Value: in.Value, Issuer: in.Issuer}
	for _, a := range active {
		if matches(a) {
			res.Ended++
		}
	}
	r := store.Revocation{Kind: in.Kind, Value: key}
	switch {
	case in.Kind == store.KindLease:
		if res.Ended == 0 {
			return nil, errUnknownLease
		}
		i := slices.IndexFunc(active, matches)
		until := active[i].ExpiresAt
		if active[i].RenewableUntil.After(until) {
			until = active[i].RenewableUntil
		}
		until = until.Add(token.MaxTTL)
		err = s.o.Revocations.Revoke(ctx, r, until)
	case in.Unblock:
		rs, ok := s.o.Revocations.(store.Resetter)
		if !ok {
			return nil, &Error{Status: http.StatusNotImplemented, Code: CodeInvalidRequest, Msg: "this revocation store cannot lift blocks"}
		}
		res.Ended, res.Unblocked, res.Cutoff = 0, true, now
		err = rs.Reset(ctx, r, store.WatermarkUntil(now))
	default:
		res.Cutoff = now
		if in.Block > 0 {
			res.Cutoff = now.Add(in.Block)
			res.BlockedUntil = res.Cutoff
		}
		err = s.o.Revocations.Revoke(ctx, r, store.WatermarkUntil(res.Cutoff))
	}
	if err != nil {
		return nil, unavailable(err)
	}
	attrs := []any{attr("event", "lease.revoke"), attr("by", by), attr("kind", string(in.Kind)), attr("value", in.Value), attrInt("ended", int64(res.Ended))}
	switch {
	case in.Unblock:
		attrs[0] = attr("event", "lease.unblock")
	case in.Block > 0:
		attrs = append(attrs, attr("blocked_until", res.BlockedUntil.UTC().Format(time.RFC3339)))
	}
	s.audit.InfoContext(ctx, "lease revoked", attrs...)
	return res, nil
}

// serveAdminRevoke is POST /admin/v1/lease/revoke: JSON AdminRevoke with
// block as a Go duration string ("1h"); answers AdminResult.
func (s *Service) serveAdminRevoke(w http.ResponseWriter, r *http.Request) {
	m, err := readJSONObject(w, r)
	var in AdminRevoke
	if err == nil {
		err = decodeAdminRevoke(m, &in)
	}
	var res *AdminResult
	if err == nil {
		res, err = s.AdminRevoke(r.Context(), in, "admin")
	}
	if err != nil {
		s.render(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func decodeAdminRevoke(m map[string]json.RawMessage, in *AdminRevoke) error {
	bad := oauthErr(CodeInvalidRequest, "body must be an object with kind and value, and optionally issuer (for an external subject), block (a duration) or unblock (true)")
	for k := range m {
		if k != "kind" && k != "value" && k != "block" && k != "unblock" && k != "issuer" {
			return bad
		}
	}
	var kind string
	if json.Unmarshal(m["kind"], &kind) != nil || json.Unmarshal(m["value"], &in.Value) != nil {
		return bad
	}
	in.Kind = store.Kind(kind)
	if v, ok := m["issuer"]; ok && json.Unmarshal(v, &in.Issuer) != nil {
		return bad
	}
	if b, ok := m["block"]; ok {
		var str string
		if json.Unmarshal(b, &str) != nil {
			return bad
		}
		d, err := time.ParseDuration(str)
		if err != nil || d <= 0 {
			return oauthErr(CodeInvalidRequest, "block must be a duration such as 1h or 30m")
		}
		in.Block = d
	}
	if u, ok := m["unblock"]; ok && json.Unmarshal(u, &in.Unblock) != nil {
		return bad
	}
	return nil
}

// RevocationInfo is one live revocation as `keyless revoke --list` shows
// it.
type RevocationInfo struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	// Until is when the entry stops mattering.
	Until time.Time `json:"until"`
	// Cutoff, for a subject, app or key, ends what was issued before it.
	Cutoff time.Time `json:"cutoff,omitzero"`
	// Blocked is true while the cutoff is in the future.
	Blocked bool `json:"blocked,omitempty"`
}

// ListRevocations returns the live revocations, blocks first.
func (s *Service) ListRevocations(ctx context.Context) ([]RevocationInfo, error) {
	if s.o.ListRevocations == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Code: CodeInvalidRequest, Msg: "this revocation store cannot list"}
	}
	es, err := s.o.ListRevocations(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	now := s.now()
	out := make([]RevocationInfo, 0, len(es))
	for _, e := range es {
		ri := RevocationInfo{Kind: e.Revocation.Kind, Value: e.Revocation.Value, Until: e.Until.UTC()}
		if store.IsWatermark(ri.Kind) {
			ri.Cutoff = store.Cutoff(e.Until).UTC()
			ri.Blocked = ri.Cutoff.After(now)
		}
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b RevocationInfo) int {
		if a.Blocked != b.Blocked {
			if a.Blocked {
				return -1
			}
			return 1
		}
		if c := b.Until.Compare(a.Until); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind)+"\x00"+a.Value, string(b.Kind)+"\x00"+b.Value)
	})
	return out, nil
}

// serveRevocations is GET /admin/v1/lease/revocations: JSON
// {"revocations": [RevocationInfo...]}.
func (s *Service) serveRevocations(w http.ResponseWriter, r *http.Request) {
	rs, err := s.ListRevocations(r.Context())
	if err != nil {
		s.render(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"revocations": rs})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// PathAdminRevocations lists live revocations on the admin listener
// (keyless revoke --list).
const PathAdminRevocations = "/admin/v1/lease/revocations"

// AdminHandler serves, with "Authorization: Bearer <AdminToken>":
//
//	POST /admin/v1/lease/revoke       JSON AdminRevoke: {"kind": "lease|sub|client|jkt", "value": "...", "block": "1h", "unblock": true}
//	GET  /admin/v1/lease/list         ?client=APP&sub=USER: the active leases
//	GET  /admin/v1/lease/revocations  the live revocations and blocks
//
// Serve it on the admin (loopback) listener only. With no AdminToken it
// answers 404.
func (s *Service) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathAdminList, s.admin(s.serveList))
	mux.HandleFunc("GET "+PathAdminRevocations, s.admin(s.serveRevocations))
	mux.HandleFunc("POST "+PathAdmin, s.admin(s.serveAdminRevoke))
	return mux
}
