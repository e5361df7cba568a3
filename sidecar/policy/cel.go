package policy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
)

// CEL limits: conditions are short and run on every lease, so both their
// size and their evaluation cost are bounded.
const (
	maxExprLen = 4 << 10
	maxCost    = 10_000
)

// celEnv declares the variables a `when` condition sees:
//
//	subject string         the authenticated subject (sub)
//	groups  list(string)   the subject's groups (policy groups + caller's)
//	app     string         the client_id
//	scopes  list(string)   the requested scopes (empty: the rule's read scopes)
//	issuer  string         the subject token's issuer
//	ttl     duration       the requested TTL (0s when none was asked for)
//	time    timestamp      the evaluation time (Request.Time)
//
// The environment is configuration, not state: built once, shared.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("subject", cel.StringType),
		cel.Variable("groups", cel.ListType(cel.StringType)),
		cel.Variable("app", cel.StringType),
		cel.Variable("scopes", cel.ListType(cel.StringType)),
		cel.Variable("issuer", cel.StringType),
		cel.Variable("ttl", cel.DurationType),
		cel.Variable("time", cel.TimestampType),
	)
})

// compile type-checks a condition at load: it must be a bool expression
// over the declared variables.
func compile(expr string) (cel.Program, error) {
	if len(expr) > maxExprLen {
		return nil, fmt.Errorf("expression longer than %d bytes", maxExprLen)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("expression must be a bool, not %s", ast.OutputType())
	}
	return env.Program(ast, cel.CostLimit(maxCost))
}

// vars is the activation for one evaluation.
type vars struct {
	subject, app, issuer string
	groups, scopes       []string
	ttl                  time.Duration
	time                 time.Time
}

func (v vars) activation() map[string]any {
	g, s := v.groups, v.scopes
	if g == nil {
		g = []string{}
	}
	if s == nil {
		s = []string{}
	}
	return map[string]any{
		"subject": v.subject, "groups": g, "app": v.app, "scopes": s,
		"issuer": v.issuer, "ttl": v.ttl, "time": v.time,
	}
}

// eval runs a compiled condition; a runtime error (no such key, cost limit)
// is returned so the caller can fail closed.
func eval(prog cel.Program, act map[string]any) (bool, error) {
	out, _, err := prog.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("condition did not yield a bool")
	}
	return b, nil
}

// oneLine folds CEL's multi-line error (with a caret diagram) into one line
// so it fits a file:line report.
func oneLine(s string) string {
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || c == '\t' || c == ' ' {
			space = true
			continue
		}
		if space && len(b) > 0 {
			b = append(b, ' ')
		}
		space = false
		b = append(b, c)
	}
	return string(b)
}
