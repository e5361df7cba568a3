package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func init() {
	register("approve", "approve a device request by its user code (keyless approve CODE --as USER)", runApprove)
	register("deny", "deny a device request by its user code", runDeny)
}

func runApprove(args []string, stdout, stderr io.Writer) error {
	return decide(true, args, stdout, stderr)
}
func runDeny(args []string, stdout, stderr io.Writer) error {
	return decide(false, args, stdout, stderr)
}

// decide is `keyless approve USER_CODE --as USER` and `keyless deny
// USER_CODE`: it calls the admin API of the keyless process running on
// the data dir (loopback only, authenticated with the 0600 admin token).
func decide(approve bool, args []string, stdout, stderr io.Writer) error {
	name, usage := "deny", "deny USER_CODE [--data DIR]"
	if approve {
		name, usage = "approve", "approve USER_CODE --as USER [--data DIR]"
	}
	fs := newFlags(name, usage, stderr)
	as := fs.String("as", "", "the user who approves (a configured user; alice in the dev sandbox)")
	dataDir := fs.String("data", defaultDataDir, "data directory of the running keyless dev or serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (approve && *as == "") {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("%s: need exactly one USER_CODE%s", name, map[bool]string{true: " and --as USER"}[approve])}
	}
	c, err := newAdminClient(*dataDir)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"user_code": fs.Arg(0), "subject": *as})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := c.call(ctx, http.MethodPost, "/admin/v1/device/"+name, string(body)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if approve {
		fmt.Fprintf(stdout, "approved %s as %s\n", fs.Arg(0), *as)
	} else {
		fmt.Fprintf(stdout, "denied %s\n", fs.Arg(0))
	}
	return nil
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v)
}

// adminClient calls the admin API of the keyless process running on a
// data dir.
type adminClient struct {
	url, token string
}

var errNotRunning = errors.New("no keyless process is running on this data dir")

func newAdminClient(dataDir string) (*adminClient, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, adminAddrFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s in %s; start `keyless dev --data %s`)", errNotRunning, adminAddrFile, dataDir, dataDir)
	}
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil || u.Scheme != "http" || net.ParseIP(u.Hostname()) == nil || !net.ParseIP(u.Hostname()).IsLoopback() {
		return nil, fmt.Errorf("%s does not hold a loopback URL", adminAddrFile)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, adminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("reading the admin token: %w", err)
	}
	return &adminClient{url: u.String(), token: strings.TrimSpace(string(tok))}, nil
}

// call POSTs or GETs path and returns the decoded JSON body, or an error
// carrying the server's error_description.
func (c *adminClient) call(ctx context.Context, method, path, body string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("%w (%v)", errNotRunning, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = decodeJSON(resp.Body, &out)
	if resp.StatusCode != http.StatusOK {
		msg, _ := out["error_description"].(string)
		if msg == "" {
			msg, _ = out["error"].(string)
		}
		return out, fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	return out, nil
}
