package lease

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/policy"
)

// Audit lines are slog records with an "event" attribute:
//
//	lease.issue, lease.renew, lease.deny, lease.renewal_reuse, lease.revoke
//
// and the lease's identity (lease_id, sub, client_id, scope, jkt), the
// rule that decided and, for denials, the OAuth error. No token, renewal
// token or proof is ever logged.

const slogInfo = slog.LevelInfo

func attr(k, v string) slog.Attr          { return slog.String(k, v) }
func attrInt(k string, v int64) slog.Attr { return slog.Int64(k, v) }
func attrBool(k string, v bool) slog.Attr { return slog.Bool(k, v) }
func itoa(v int64) string                 { return strconv.FormatInt(max(v, 1), 10) }
func joinScope(s []string) string         { return strings.Join(s, " ") }
func (g *Family) attrs() []slog.Attr {
	a := []slog.Attr{
		attr("lease_id", g.LeaseID), attr("sub", g.Subject), attr("issuer", g.IdP), attr("client_id", g.ClientID),
		attr("scope", joinScope(g.Scopes)), attr("jkt", g.JKT), attrBool("preview", g.Preview),
	}
	if len(g.Groups) > 0 {
		// The groups the subject token carried: the policy's decision
		// depends on them, so the audit trail shows them.
		a = append(a, attr("groups", joinScope(g.Groups)))
	}
	return a
}

// denyInfo is what is known about a refused request when it is refused.
type denyInfo struct {
	req      *vendRequest
	subject  *subjectToken
	decision *policy.Decision
	Family   *Family
}

// deny writes the audit line of a refusal. op is lease, exchange, renew
// or revoke.
func (s *Service) deny(ctx context.Context, op string, err error, in *denyInfo, proof *dpop.Proof) {
	e := asError(err)
	attrs := []slog.Attr{attr("event", "lease.deny"), attr("op", op), attr("error", e.Code), attr("reason", e.Msg)}
	if e.Err != nil {
		attrs = append(attrs, attr("detail", e.Err.Error()))
	}
	if proof != nil {
		attrs = append(attrs, attr("jkt", proof.JKT))
	}
	if in != nil {
		if in.req != nil {
			attrs = append(attrs, attr("client_id", in.req.ClientID), attr("requested_scope", joinScope(in.req.Scopes)))
		}
		if st := in.subject; st != nil {
			attrs = append(attrs, attr("token_issuer", st.Issuer))
			if st.Subject != "" {
				attrs = append(attrs, attr("sub", st.Subject))
			}
			if st.IdP != "" {
				attrs = append(attrs, attr("issuer", st.IdP))
			}
			if st.Check != "" {
				attrs = append(attrs, attr("check", st.Check))
			}
		}
		if in.decision != nil {
			attrs = append(attrs, attr("rule", in.decision.Rule), attr("policy_reason", in.decision.Reason))
		}
		if in.Family != nil {
			attrs = append(attrs, attr("lease_id", in.Family.LeaseID), attr("sub", in.Family.Subject), attr("client_id", in.Family.ClientID))
			if in.Family.IdP != "" {
				attrs = append(attrs, attr("issuer", in.Family.IdP))
			}
		}
	}
	s.audit.LogAttrs(ctx, slog.LevelWarn, "lease denied", attrs...)
}
