package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// composeFile is the part of compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string
		NetworkMode string `yaml:"network_mode"`
		ReadOnly    bool   `yaml:"read_only"`
		Command     []string
		Volumes     []string
	}
	Volumes map[string]any
}

// composePorts are the ports compose.yaml and its configs use; the test
// moves each to a free one (the files are copied and rewritten, never
// edited in place).
var composePorts = []string{"8787", "8788", "8789", "9090", "9091", "9092", "6379", "9000"}

// TestCompose brings up deploy/compose/compose.yaml with podman commands
// derived from the file (no compose tool is installed here): serve and
// both proxies run from the keyless image as the file says (host network,
// read-only, volumes); Redis's image cannot be pulled here, so the host's
// redis-server runs with the file's command line. Then: the proxies are
// ready on the shared store, a device flow and a lease, the lease works on
// both replicas, and a revocation at the issuer reaches both through Redis.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	podman := need(t, "podman", "apt-get install podman runc; .ci/deps does")
	redisServer := need(t, "redis-server", "apt-get install redis-server")
	if os.Geteuid() != 0 {
		t.Skip("rootful podman (CI runs as root)")
	}
	root := repoRoot(t)
	t.Setenv("CONTAINERS_CONF", filepath.Join(root, ".ci", "containers.conf"))
	v, _ := os.ReadFile(filepath.Join(root, "VERSION"))
	version := strings.TrimSpace(string(v))
	image := "keyless:" + version
	// Always rebuilt (seconds when nothing changed): never an older image.
	runCmd(t, root, nil, "make", "--no-print-directory", "image")

	// Copy the directory with every port moved to a free one.
	dir := t.TempDir()
	// Every listener is held until all ports are chosen, so no two
	// services get the same one.
	ports := map[string]string{}
	var held []net.Listener
	for _, p := range composePorts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		a := ln.Addr().String()
		ports[p] = a[strings.LastIndex(a, ":")+1:]
	}
	for _, ln := range held {
		ln.Close()
	}
	portRE := regexp.MustCompile(`\b(` + strings.Join(composePorts, "|") + `)\b`)
	src := filepath.Join(root, "deploy", "compose")
	for _, f := range []string{"compose.yaml", "keyless.yaml", "proxy-a.yaml", "proxy-b.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		b = portRE.ReplaceAllFunc(b, func(m []byte) []byte { return []byte(ports[string(m)]) })
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cf composeFile
	b, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	rd := cf.Services["redis"]
	if !strings.Contains(strings.Join(rd.Command, " "), "--maxmemory-policy noeviction") || !strings.Contains(strings.Join(rd.Command, " "), "--appendonly yes") {
		t.Errorf("redis command %q: want noeviction and appendonly", rd.Command)
	}

	// Named volumes are directories here; the keyless ones owned by 65532.
	vols := map[string]string{}
	for name := range cf.Volumes {
		vols[name] = filepath.Join(dir, "vol-"+name)
		if err := os.Mkdir(vols[name], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(spec string) (host, ctr string) {
		parts := strings.SplitN(spec, ":", 2)
		host = parts[0]
		if strings.HasPrefix(host, "./") {
			host = filepath.Join(dir, host)
		} else if vols[host] != "" {
			host = vols[host]
		} else {
			t.Fatalf("volume %q: neither a path nor a named volume", spec)
		}
		return host, parts[1]
	}

	// Redis: the file's command on the host's redis-server, /data on its volume.
	args := append([]string(nil), rd.Command[1:]...)
	for _, m := range rd.Volumes {
		host, ctr := mount(m)
		for i := range args {
			if args[i] == ctr {
				args[i] = host
			}
		}
	}
	redis := exec.Command(redisServer, args...)
	redis.Dir = dir
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })

	// The upstream API the proxies forward to.
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sub":%q}`, r.Header.Get("X-Keyless-Sub"))
	})}
	upLn := listen(t, "127.0.0.1:"+ports["9000"])
	go up.Serve(upLn)
	t.Cleanup(func() { up.Close() })

	suffix := make([]byte, 4)
	rand.Read(suffix)
	var logs []func() string
	for _, name := range []string{"serve", "proxy-a", "proxy-b"} {
		s := cf.Services[name]
		if s.NetworkMode != "host" || !s.ReadOnly {
			t.Errorf("%s: network_mode %q read_only %v", name, s.NetworkMode, s.ReadOnly)
		}
		img := strings.ReplaceAll(s.Image, "${KEYLESS_VERSION:-0.1.0}", version)
		if img != image {
			t.Errorf("%s: image %q, want %q (the ${KEYLESS_VERSION:-...} default must be VERSION)", name, s.Image, image)
		}
		cname := "keyless-compose-" + name + "-" + hex.EncodeToString(suffix)
		run := []string{"run", "-d", "--name", cname, "--network=host", "--read-only"}
		for _, m := range s.Volumes {
			host, ctr := mount(m)
			if strings.HasPrefix(host, filepath.Join(dir, "vol-")) {
				if err := os.Chown(host, 65532, 65532); err != nil {
					t.Fatal(err)
				}
			}
			run = append(run, "-v", host+":"+ctr)
		}
		run = append(append(run, image), s.Command...)
		runCmd(t, root, nil, podman, run...)
		t.Cleanup(func() { exec.Command(podman, "rm", "-f", "-t", "2", cname).Run() })
		logs = append(logs, func() string {
			out, _ := exec.Command(podman, "logs", cname).CombinedOutput()
			return name + ":\n" + string(out)
		})
	}
	allLogs := func() string {
		var s []string
		for _, l := range logs {
			s = append(s, l())
		}
		return strings.Join(s, "\n")
	}
	iss := "http://127.0.0.1:" + ports["8787"]
	for _, p := range []string{"9090", "9091", "9092"} {
		waitHTTP(t, "http://127.0.0.1:"+ports[p]+"/readyz", 30*time.Second, allLogs)
	}

	// Device flow and a lease, from the issuer.
	var da map[string]any
	decode(t, postForm(t, iss+"/device_authorization", url.Values{"client_id": {"my-app"}}, nil), &da)
	code, _ := da["user_code"].(string)
	if code == "" {
		t.Fatalf("device authorization: %v\n%s", da, allLogs())
	}
	data := vols["keyless-data"]
	keyless := filepath.Join(root, "build", "image", "keyless")
	runCmd(t, root, nil, keyless, "approve", code, "--data", data, "--as", "alice")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := dpop.NewECDSASigner(k)
	var tok map[string]any
	decode(t, dpopPost(t, key, iss+"/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"my-app"},
		"device_code": {da["device_code"].(string)},
	}.Encode(), "application/x-www-form-urlencoded"), &tok)
	body, _ := json.Marshal(map[string]any{"subject_token": tok["access_token"], "client_id": "my-app"})
	var ls map[string]any
	decode(t, dpopPost(t, key, iss+"/v1/lease", string(body), "application/json"), &ls)
	lease, _ := ls["access_token"].(string)
	leaseID, _ := ls["lease_id"].(string)
	if lease == "" || leaseID == "" {
		t.Fatalf("lease: %v\n%s", ls, allLogs())
	}

	// Both replicas, as behind the load balancer: the proof's htu is the
	// public URL, the request goes to the replica.
	publicURL := "http://127.0.0.1:8080"
	call := func(replicaPort string) (int, string) {
		proof, _ := dpop.NewProof(key, http.MethodGet, publicURL+"/v1/things", dpop.ProofOptions{AccessToken: lease})
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:"+replicaPort+"/v1/things", nil)
		req.RequestURI, req.Host = "", "127.0.0.1:8080"
		req.Header.Set("Authorization", "DPoP "+lease)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("replica on %s: %v\n%s", replicaPort, err, allLogs())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A brand-new Redis looks like one that lost its data: the proxies
	// answer 503 to proofs older than the store's start plus the allowed
	// clock skew (redisstore's restart guard), so the first calls may be
	// refused; each retry signs a fresh proof.
	for _, p := range []string{ports["8788"], ports["8789"]} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, b := call(p)
			if code == 200 && strings.Contains(b, "alice") {
				break
			}
			if code != 503 || time.Now().After(deadline) {
				t.Fatalf("replica on %s: %d %s\n%s", p, code, b, allLogs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Revoked at the issuer, refused by both replicas (through Redis).
	runCmd(t, root, nil, keyless, "revoke", "--lease", leaseID, "--data", data)
	for _, p := range []string{ports["8788"], ports["8789"]} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := call(p)
			if code == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica on %s still answers %d after the revocation", p, code)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
