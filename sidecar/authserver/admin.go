package authserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// AdminHandler is the admin API for `keyless approve`, `keyless deny` and
// `keyless keys`. Serve it only on a loopback listener: it authenticates
// with the admin token (Authorization: Bearer, compared in constant time)
// and nothing else. With no AdminToken configured every request is 401.
//
//	POST /admin/v1/device/approve  {"user_code": "BCDF-GHJK", "subject": "alice"}
//	POST /admin/v1/device/deny     {"user_code": "BCDF-GHJK"}
//	POST /admin/v1/keys/rotate     -> {"kid": "..."}
//	GET  /admin/v1/keys            -> {"keys": [...]}
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/device/approve", s.adminDecide(true))
	mux.HandleFunc("POST /admin/v1/device/deny", s.adminDecide(false))
	mux.HandleFunc("POST /admin/v1/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.RotateKeys(r.Context())
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	})
	mux.HandleFunc("GET /admin/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]token.KeyInfo{"keys": s.keys.Keys()})
	})
	return recoverer(s.log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminBearer(r) {
			s.renderError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "admin token required",
				Header: http.Header{"Www-Authenticate": {`Bearer realm="keyless-admin"`}}})
			return
		}
		mux.ServeHTTP(w, r)
	}))
}

// AdminDecision is the body of the approve and deny calls.
type AdminDecision struct {
	UserCode string `json:"user_code"`
	Subject  string `json:"subject,omitempty"`
}

func (s *Server) adminDecide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var d AdminDecision
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil || d.UserCode == "" || (approve && d.Subject == "") {
			s.renderError(w, r, oauthErr(CodeInvalidRequest, "body must be {\"user_code\": ..., \"subject\": ...}"))
			return
		}
		var err error
		if approve {
			err = s.Approve(r.Context(), d.UserCode, d.Subject, "admin")
		} else {
			err = s.Deny(r.Context(), d.UserCode, d.Subject, "admin")
		}
		switch {
		case errors.Is(err, ErrUnknownUserCode):
			s.renderError(w, r, &Error{Status: http.StatusNotFound, Code: "unknown_user_code", Msg: "no pending request has this code"})
		case errors.Is(err, ErrAlreadyDecided):
			s.renderError(w, r, &Error{Status: http.StatusConflict, Code: "already_decided", Msg: "the request was already approved or denied"})
		case errors.Is(err, ErrUnknownUser):
			s.renderError(w, r, oauthErr("unknown_user", "no such user"))
		case err != nil:
			s.renderError(w, r, err)
		default:
			status := "denied"
			if approve {
				status = "approved"
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": status})
		}
	}
}
