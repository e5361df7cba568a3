package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// TestContainerImage builds the image with `make image` and runs it as the README's "run it as a container"
// says: `keyless dev` with --network=host, --read-only, the data directory
// on a volume. Through it: a device flow (authorize, `keyless approve`,
// the DPoP token request), a lease, and a proxied call; and the process
// runs as the image's non-root user.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a container")
	}
	podman := need(t, "podman", "apt-get install podman runc; .ci/deps does")
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "web-component", "keyless.wasm")); err != nil {
		t.Skip("web-component/keyless.wasm missing: run make wasm")
	}
	if os.Geteuid() != 0 {
		t.Skip("the image test runs rootful podman (CI runs as root)")
	}
	// Every podman call, runCmd's and exec.Command's, uses the CI settings.
	t.Setenv("CONTAINERS_CONF", filepath.Join(root, ".ci", "containers.conf"))
	var env []string
	version, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	// The README's commands: make image, then podman run keyless:VERSION.
	tag := "keyless:" + strings.TrimSpace(string(version))
	start := time.Now()
	runCmd(t, root, env, "make", "--no-print-directory", "image")
	t.Logf("image built in %v", time.Since(start).Round(time.Millisecond))

	// No shell, nothing but what the Containerfile copies.
	var img []struct {
		Config struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(runCmd(t, root, env, podman, "image", "inspect", tag)), &img); err != nil || len(img) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	c := img[0].Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/usr/bin/keyless" ||
		c.Labels["org.opencontainers.image.version"] != strings.TrimSpace(string(version)) || c.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("image config = %+v", c)
	}
	if out, err := exec.Command(podman, "run", "--rm", "--network=none", "--entrypoint", "/bin/sh", tag, "-c", "true").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "/bin/sh") {
		t.Errorf("the image has a shell (or podman failed for another reason): %v %s", err, out)
	}
	if out := runCmd(t, root, env, podman, "run", "--rm", "--network=none", tag, "version"); !strings.Contains(out, "keyless "+strings.TrimSpace(string(version))) {
		t.Errorf("keyless version in the image: %q", out)
	}

	data := t.TempDir()
	if err := os.Chown(data, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	issuer, proxyAddr := freeAddr(t), freeAddr(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "keyless-test-" + hex.EncodeToString(b)
	runCmd(t, root, env, podman, "run", "-d", "--name", name, "--network=host", "--read-only",
		"-v", data+":/var/lib/keyless", tag,
		"dev", "--data", "/var/lib/keyless", "--issuer-addr", issuer, "--proxy-addr", proxyAddr,
		"--assets", "/usr/share/keyless/web-component")
	t.Cleanup(func() { exec.Command(podman, "rm", "-f", "-t", "2", name).Run() })
	logs := func() string {
		out, _ := exec.Command(podman, "logs", name).CombinedOutput()
		return string(out)
	}
	iss, prx := "http://"+issuer, "http://"+proxyAddr
	waitHTTP(t, iss+"/.well-known/oauth-authorization-server", 30*time.Second, logs)

	// The process runs as 65532 with a read-only root filesystem.
	pid := strings.TrimSpace(runCmd(t, root, env, podman, "inspect", "--format", "{{.State.Pid}}", name))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") && strings.Fields(l)[1] != "65532" {
			t.Errorf("container process %s", l)
		}
	}
	if ro := strings.TrimSpace(runCmd(t, root, env, podman, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name)); ro != "true" {
		t.Errorf("ReadonlyRootfs = %s", ro)
	}
	// The data directory is written by the non-root user, 0600.
	fi, err := os.Stat(filepath.Join(data, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token: %v %v", fi, err)
	}

	// The component is served from the image.
	resp, err := http.Get(iss + "/keyless/keyless.wasm")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" {
		t.Errorf("keyless.wasm: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The device flow, as a CLI client would run it (RFC 8628 section 3).
	var da map[string]any
	decode(t, postForm(t, iss+"/device_authorization", url.Values{"client_id": {"demo-app"}}, nil), &da)
	code, _ := da["user_code"].(string)
	if code == "" {
		t.Fatalf("device authorization: %v\n%s", da, logs())
	}
	runCmd(t, root, nil, filepath.Join(root, "build", "image", "keyless"), "approve", code, "--data", data, "--as", "alice")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, err := dpop.NewECDSASigner(k)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	decode(t, dpopPost(t, key, iss+"/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"demo-app"},
		"device_code": {da["device_code"].(string)},
	}.Encode(), "application/x-www-form-urlencoded"), &tok)
	login, _ := tok["access_token"].(string)
	if login == "" || tok["token_type"] != "DPoP" {
		t.Fatalf("token: %v\n%s", tok, logs())
	}
	body, _ := json.Marshal(map[string]string{"subject_token": login, "client_id": "demo-app"})
	var ls map[string]any
	decode(t, dpopPost(t, key, iss+"/v1/lease", string(body), "application/json"), &ls)
	lease, _ := ls["access_token"].(string)
	if lease == "" {
		t.Fatalf("lease: %v\n%s", ls, logs())
	}

	// The proxied call: the built-in echo API answers through the proxy.
	proof, _ := dpop.NewProof(key, http.MethodGet, prx+"/hello", dpop.ProofOptions{AccessToken: lease})
	req, _ := http.NewRequest(http.MethodGet, prx+"/hello", nil)
	req.Header.Set("Authorization", "DPoP "+lease)
	req.Header.Set("DPoP", proof)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), "alice") {
		t.Errorf("proxied call: %d %s\n%s", resp.StatusCode, out, logs())
	}
	// Without the lease, the proxy refuses.
	resp, err = http.Get(prx + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("proxied call without a lease: %d", resp.StatusCode)
	}
	t.Logf("image test done in %v", time.Since(start).Round(time.Millisecond))
}

// dpopPost POSTs body with a DPoP proof by key, once more with the
// server's nonce if it asks for one (RFC 9449 section 8).
func dpopPost(t *testing.T, key dpop.Signer, u, body, ctype string) *http.Response {
	t.Helper()
	nonce := ""
	for range 2 {
		proof, err := dpop.NewProof(key, http.MethodPost, u, dpop.ProofOptions{Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" && resp.StatusCode == 400 && nonce == "" {
			resp.Body.Close()
			nonce = n
			continue
		}
		return resp
	}
	t.Fatalf("%s: still asks for a nonce", u)
	return nil
}
