package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

// helmBin is bin/helm, built by `make helm` from tools/helm (its own
// module, so Helm's dependencies never touch the main go.mod).
func helmBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "bin", "helm")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bin/helm missing under CI: make helm builds it")
		}
		t.Skip("bin/helm missing: make helm")
	}
	return p
}

// manifest is the part of a rendered object the checks read.
type manifest struct {
	Kind     string
	Metadata struct{ Name string }
	Data     map[string]string
	Spec     struct {
		Replicas *int
		Template struct {
			Spec podSpec
		}
		Endpoints []struct{ Port, Path string }
	}
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    int   `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name            string
		Image           string
		Args            []string
		Env             []struct{ Name string }
		ReadinessProbe  *probe `yaml:"readinessProbe"`
		LivenessProbe   *probe `yaml:"livenessProbe"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			Capabilities             struct{ Drop []string }
		} `yaml:"securityContext"`
	}
}

type probe struct {
	HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
}

func helmTemplate(t *testing.T, helm, chart string, args ...string) []manifest {
	t.Helper()
	out := runCmd(t, repoRoot(t), nil, helm, append([]string{"template", "t", chart}, args...)...)
	var ms []manifest
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, out)
		}
		if m.Kind != "" {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestHelmChart lints the chart and renders it (defaults, and the test
// values: three proxies on Redis, TLS, ServiceMonitor), then checks what
// a cluster would run: probes on /healthz and /readyz, non-root and
// read-only, a versioned image, one serve replica, the Redis URL from a
// Secret, and configs that keyless itself loads.
func TestHelmChart(t *testing.T) {
	helm := helmBin(t)
	root := repoRoot(t)
	chart := filepath.Join(root, "deploy", "helm", "keyless")
	testValues := filepath.Join(chart, "ci", "test-values.yaml")
	runCmd(t, root, nil, helm, "lint", "--strict", chart)
	runCmd(t, root, nil, helm, "lint", "--strict", chart, "-f", testValues)
	version, _ := os.ReadFile(filepath.Join(root, "VERSION"))
	wantImage := "ghcr.io/keyless-dev/keyless:" + strings.TrimSpace(string(version))

	for _, tc := range []struct {
		name           string
		args           []string
		proxies        int
		serviceMonitor bool
		redis, tls     bool
	}{
		{"defaults", nil, 1, false, false, false},
		{"test values", []string{"-f", testValues}, 3, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := helmTemplate(t, helm, chart, tc.args...)
			kinds := map[string]int{}
			for _, m := range ms {
				kinds[m.Kind]++
			}
			if kinds["Deployment"] != 2 || kinds["Service"] != 2 || kinds["ConfigMap"] != 1 || kinds["PersistentVolumeClaim"] != 1 {
				t.Errorf("kinds = %v", kinds)
			}
			if got := kinds["ServiceMonitor"] == 1; got != tc.serviceMonitor {
				t.Errorf("ServiceMonitor rendered = %v, want %v", got, tc.serviceMonitor)
			}
			if got := kinds["Secret"] == 1; got != tc.redis {
				t.Errorf("redis Secret rendered = %v, want %v", got, tc.redis)
			}
			for _, m := range ms {
				switch m.Kind {
				case "Deployment":
					checkDeployment(t, m, wantImage, tc.redis)
					want := 1
					if strings.HasSuffix(m.Metadata.Name, "-proxy") {
						want = tc.proxies
					}
					if m.Spec.Replicas == nil || *m.Spec.Replicas != want {
						t.Errorf("%s: replicas %v, want %d", m.Metadata.Name, m.Spec.Replicas, want)
					}
					if strings.HasSuffix(m.Metadata.Name, "-serve") {
						args := strings.Join(m.Spec.Template.Spec.Containers[0].Args, " ")
						if strings.Contains(args, "--tls-cert=") != tc.tls || !strings.Contains(args, "--admin-addr=0.0.0.0:9090") {
							t.Errorf("serve args %q (tls %v)", args, tc.tls)
						}
					}
				case "ServiceMonitor":
					if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Path != "/metrics" || m.Spec.Endpoints[0].Port != "admin" {
						t.Errorf("ServiceMonitor endpoints %+v", m.Spec.Endpoints)
					}
				case "ConfigMap":
					if tc.name == "test values" {
						loadRenderedConfigs(t, m.Data)
					}
				}
			}
		})
	}

	// Refusals: "latest", and several proxies without a shared store.
	for _, args := range [][]string{{"--set", "image.tag=latest"}, {"--set", "proxy.replicas=2"}} {
		cmd := exec.Command(helm, append([]string{"template", "t", chart}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err == nil {
			t.Errorf("helm template %v rendered; want a refusal", args)
		}
	}
}

func checkDeployment(t *testing.T, m manifest, wantImage string, redis bool) {
	t.Helper()
	ps := m.Spec.Template.Spec
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %+v", m.Metadata.Name, ps.SecurityContext)
	}
	for _, c := range ps.Containers {
		if c.Image != wantImage || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q, want %q", m.Metadata.Name, c.Image, wantImage)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "admin" {
			t.Errorf("%s: readinessProbe %+v", m.Metadata.Name, c.ReadinessProbe)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: livenessProbe %+v", m.Metadata.Name, c.LivenessProbe)
		}
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			strings.Join(sc.Capabilities.Drop, ",") != "ALL" {
			t.Errorf("%s: container securityContext %+v", m.Metadata.Name, sc)
		}
		hasStore := false
		for _, e := range c.Env {
			hasStore = hasStore || e.Name == "KEYLESS_STORE"
		}
		if hasStore != redis {
			t.Errorf("%s: KEYLESS_STORE from the Secret = %v, want %v", m.Metadata.Name, hasStore, redis)
		}
	}
}

// loadRenderedConfigs loads the ConfigMap's files with keyless's own
// loaders: a chart that renders a config keyless refuses is broken.
func loadRenderedConfigs(t *testing.T, data map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := config.Load(filepath.Join(dir, "keyless.yaml")); err != nil {
		t.Errorf("rendered keyless.yaml: %v\n%s", err, data["keyless.yaml"])
	}
	cfg, err := proxy.LoadConfig(filepath.Join(dir, "proxy.yaml"))
	if err != nil {
		t.Errorf("rendered proxy.yaml: %v\n%s", err, data["proxy.yaml"])
		return
	}
	if cfg.Server.AdminListen != "0.0.0.0:9090" {
		t.Errorf("proxy admin_listen = %q: the probes need it on the pod's port 9090", cfg.Server.AdminListen)
	}
}

// TestVersionsAgree: VERSION is the one version; the chart and the npm
// package must carry it.
func TestVersionsAgree(t *testing.T) {
	root := repoRoot(t)
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(v))
	var chart struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	b, _ := os.ReadFile(filepath.Join(root, "deploy", "helm", "keyless", "Chart.yaml"))
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	b, _ = os.ReadFile(filepath.Join(root, "web-component", "package.json"))
	if err := yaml.Unmarshal(b, &pkg); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	for name, got := range map[string]string{"Chart.yaml version": chart.Version, "Chart.yaml appVersion": chart.AppVersion, "package.json version": pkg.Version} {
		if got != version {
			t.Errorf("%s = %q, VERSION = %q", name, got, version)
		}
	}
}
