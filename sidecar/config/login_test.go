package config

import (
	"slices"
	"strings"
	"testing"
)

func TestLoginValidate(t *testing.T) {
	ok := OIDCLogin{Name: "corp", Issuer: "https://idp.example.com", ClientID: "keyless", ClientSecretFile: "/etc/keyless/corp.secret"}
	with := func(f func(*OIDCLogin)) []OIDCLogin { o := ok; f(&o); return []OIDCLogin{o} }
	tests := []struct {
		name string
		oidc []OIDCLogin
		want string // substring of the error; "" means valid
	}{
		{"valid", []OIDCLogin{ok}, ""},
		{"http on loopback", with(func(o *OIDCLogin) { o.Issuer = "http://127.0.0.1:4444/" }), ""},
		{"no name", with(func(o *OIDCLogin) { o.Name = "" }), "name is required"},
		{"name with a colon", with(func(o *OIDCLogin) { o.Name = "a:b" }), "name must be"},
		{"name starting with a dash", with(func(o *OIDCLogin) { o.Name = "-corp" }), "name must be"},
		{"duplicate name", []OIDCLogin{ok, ok}, "duplicate name"},
		{"no issuer", with(func(o *OIDCLogin) { o.Issuer = "" }), "issuer is required"},
		{"http issuer", with(func(o *OIDCLogin) { o.Issuer = "http://idp.example.com" }), "https URL"},
		{"issuer with a query", with(func(o *OIDCLogin) { o.Issuer = "https://idp.example.com?x=1" }), "https URL"},
		{"no client id", with(func(o *OIDCLogin) { o.ClientID = "" }), "client_id is required"},
		{"no secret file", with(func(o *OIDCLogin) { o.ClientSecretFile = "" }), "client_secret_file is required"},
		{"bad scope", with(func(o *OIDCLogin) { o.Scopes = []string{"a b"} }), "not a valid scope token"},
		{"policy group with a colon", with(func(o *OIDCLogin) { o.GroupMap = map[string]string{"g": "a:b"} }), "group_map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Login: Login{OIDC: tt.oidc}}
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoginYAML(t *testing.T) {
	c, err := Parse([]byte(`login:
  oidc:
    - name: corp
      issuer: https://idp.example.com
      client_id: keyless
      client_secret_file: /run/secrets/corp
      subject_claim: email
      groups_claim: groups
      group_map: {"eng": engineering}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Login.OIDC[0]
	if o.Subject() != "email" || o.GroupMap["eng"] != "engineering" || !slices.Equal(o.RequestScopes(), []string{"openid", "profile", "email"}) {
		t.Errorf("decoded %+v", o)
	}
	if _, err := Parse([]byte("login:\n  oidc:\n    - name: x\n      secret: y\n")); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("unknown field accepted: %v", err)
	}
	o.Scopes = []string{"email", "openid", "groups"}
	if got := o.RequestScopes(); !slices.Equal(got, []string{"openid", "email", "groups"}) {
		t.Errorf("RequestScopes = %v", got)
	}
}
