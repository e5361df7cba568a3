package config

import (
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Sandbox names used by `keyless dev` when no config file is given.
const (
	SandboxClientID = "demo-app"
	SandboxUser     = "alice"
)

// Sandbox returns the `keyless dev` configuration: a public client
// "demo-app" allowed api:read (granted by default) and api:write (only when
// asked), and one user "alice" whose password is the given one (kept only
// as a bcrypt hash). Devices poll every second.
func Sandbox(password string) (*Config, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &Config{
		// The sandbox polls every second, as the demo does: approval on the
		// phone shows up at once instead of up to 5 s later.
		Issuer: Issuer{PollInterval: Duration(time.Second)},
		Clients: []Client{{
			ID:            SandboxClientID,
			Name:          "Demo micro app",
			Scopes:        []string{"api:read", "api:write"},
			DefaultScopes: []string{"api:read"},
		}},
		Users: []User{{Name: SandboxUser, PasswordHash: string(h)}},
	}, nil
}
