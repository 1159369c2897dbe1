package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/node"
	"gopkg.in/yaml.v3"
)

const deployDir = "../../deploy"

// shippedConfig is a clusterd configuration shipped under deploy/, with the
// environment its deployment gives it.
type shippedConfig struct {
	name string // where it comes from
	file string // a file holding it
	env  map[string]string
	// set by Kubernetes manifests: the pod that runs it
	pod map[string]any
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string { s, _ := get(v, keys...).(string); return s }
func list(v any, keys ...string) []any { l, _ := get(v, keys...).([]any); return l }

// clusterdContainer finds the container running clusterd in a pod spec.
func clusterdContainer(spec any) map[string]any {
	for _, c := range list(spec, "containers") {
		if strings.Contains(str(c, "image"), "clusterd") {
			return c.(map[string]any)
		}
	}
	return nil
}

// podEnv is what the container's environment holds at run time: literal
// values, the pod name for metadata.name, and a recognisable stand-in for
// each secret.
func podEnv(t *testing.T, c map[string]any) map[string]string {
	env := map[string]string{}
	for _, e := range list(c, "env") {
		name := str(e, "name")
		switch {
		case get(e, "value") != nil:
			env[name] = fmt.Sprint(get(e, "value"))
		case str(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.name":
			env[name] = "app-0"
		case get(e, "valueFrom", "secretKeyRef") != nil:
			env[name] = "SECRET-" + str(e, "valueFrom", "secretKeyRef", "key")
		default:
			t.Fatalf("env %s: unsupported source %v", name, e)
		}
		// Kubernetes expands $(VAR) from the variables defined before.
		for k, v := range env {
			if k != name && strings.Contains(env[name], "$("+k+")") {
				env[name] = strings.ReplaceAll(env[name], "$("+k+")", v)
			}
		}
	}
	return env
}

// readEnvFile reads a systemd EnvironmentFile.
func readEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", file, line)
		}
		env[k] = v
	}
	return env
}

// shippedConfigs finds every clusterd configuration under deploy/: plain
// config files (with the env file beside them, if any) and the ones embedded
// in Kubernetes ConfigMaps (with the environment of the pods mounting them).
func shippedConfigs(t *testing.T) []shippedConfig {
	t.Helper()
	var out []shippedConfig
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
			return err
		}
		docs := yamlDocs(t, p)
		if len(docs) > 0 && docs[0]["kind"] == nil {
			sc := shippedConfig{name: p, file: p, env: map[string]string{}}
			if envFile := filepath.Join(filepath.Dir(p), "clusterd.env"); fileExists(envFile) {
				sc.env = readEnvFile(t, envFile)
			}
			out = append(out, sc)
			return nil
		}
		var pods []map[string]any
		for _, d := range docs {
			switch d["kind"] {
			case "Pod":
				pods = append(pods, d)
			case "StatefulSet", "Deployment", "DaemonSet":
				pods = append(pods, get(d, "spec", "template").(map[string]any))
			}
		}
		for _, d := range docs {
			if d["kind"] != "ConfigMap" {
				continue
			}
			for key, v := range get(d, "data").(map[string]any) {
				if !strings.HasSuffix(key, ".yaml") && !strings.HasSuffix(key, ".yml") {
					continue
				}
				file := filepath.Join(t.TempDir(), key)
				if err := os.WriteFile(file, []byte(v.(string)), 0o600); err != nil {
					t.Fatal(err)
				}
				sc := shippedConfig{name: fmt.Sprintf("%s ConfigMap %s key %s", p, str(d, "metadata", "name"), key), file: file}
				// The pod that mounts this ConfigMap and passes this key as --config.
				for _, pod := range pods {
					c := clusterdContainer(get(pod, "spec"))
					if c == nil {
						continue
					}
					if cfgArg := configArg(c); cfgArg != "" && mountedFrom(get(pod, "spec"), c, cfgArg) == "configMap:"+str(d, "metadata", "name")+"/"+key {
						sc.env, sc.pod = podEnv(t, c), pod
					}
				}
				if sc.pod == nil {
					t.Errorf("%s: no pod runs clusterd with it as --config", sc.name)
				}
				out = append(out, sc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func configArg(c map[string]any) string {
	args := append(list(c, "command"), list(c, "args")...)
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}

// mountedFrom says where file comes from in container c of pod spec:
// "configMap:<name>/<key>", "secret:<name>/<key>", "volume:<name>" or "".
func mountedFrom(spec any, c map[string]any, file string) string {
	for _, m := range list(c, "volumeMounts") {
		mp := strings.TrimSuffix(str(m, "mountPath"), "/")
		rel, ok := strings.CutPrefix(file, mp+"/")
		if !ok && file != mp {
			continue
		}
		if sp := str(m, "subPath"); sp != "" {
			rel = sp
		}
		for _, v := range list(spec, "volumes") {
			if str(v, "name") != str(m, "name") {
				continue
			}
			switch {
			case get(v, "configMap") != nil:
				return "configMap:" + str(v, "configMap", "name") + "/" + rel
			case get(v, "secret") != nil:
				return "secret:" + str(v, "secret", "secretName") + "/" + rel
			}
		}
		return "volume:" + str(m, "name")
	}
	return ""
}

// configCheck runs `clusterd config check --config file` with env set.
func configCheck(t *testing.T, file string, env map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var o, e bytes.Buffer
	err = run([]string{"config", "check", "--config", file}, &o, &e)
	return o.String(), e.String(), err
}

// Every shipped example configuration is valid with the environment its
// deployment gives it, `config check` prints it with secrets redacted and
// nothing else lost, and no environment variable of the deployment is a
// misspelt key.
func TestShippedConfigsPassConfigCheck(t *testing.T) {
	configs := shippedConfigs(t)
	if len(configs) < 2 {
		t.Fatalf("found %d shipped configs under %s, want the Kubernetes and systemd ones", len(configs), deployDir)
	}
	for _, sc := range configs {
		t.Run(sc.name, func(t *testing.T) {
			sc.env = withTLSStandIns(t, sc)
			envList := os.Environ()
			for k, v := range sc.env {
				envList = append(envList, k+"="+v)
			}
			want, err := node.Load(sc.file, envList)
			if err != nil {
				t.Fatalf("node.Load: %v", err)
			}
			out, warnings, err := configCheck(t, sc.file, sc.env)
			if err != nil {
				t.Fatalf("config check: %v\n%s", err, warnings)
			}
			if sc.pod != nil && warnings != "" {
				t.Fatalf("config check warns about the pod's environment:\n%s", warnings)
			}
			for k, v := range sc.env {
				if strings.Contains(k, "PASSWORD") && strings.Contains(out, v) {
					t.Fatalf("secret %s printed:\n%s", k, out)
				}
			}
			if want.Clustering.Password != "" && !strings.Contains(out, "password: "+node.Redacted) {
				t.Fatalf("cluster password not shown as redacted:\n%s", out)
			}
			// The printout is the whole effective configuration.
			printed := filepath.Join(t.TempDir(), "effective.yaml")
			if err := os.WriteFile(printed, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := node.Load(printed, nil)
			if err != nil {
				t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
			}
			gotY, _ := got.YAML()
			wantY, _ := want.Redacted().Effective().YAML()
			if string(gotY) != string(wantY) {
				t.Fatalf("printed configuration differs from the effective one:\n got %s\nwant %s", gotY, wantY)
			}
		})
	}
}

// The Kubernetes example holds together: probes on the operations API port,
// reachable by the kubelet; ports declared; secrets from a Secret, mounted
// where the config expects them; data on a volume; seed routes naming the
// StatefulSet's own pods through its headless Service.
func TestKubernetesExampleIsConsistent(t *testing.T) {
	found := false
	for _, sc := range shippedConfigs(t) {
		if sc.pod == nil {
			continue
		}
		found = true
		envList := os.Environ()
		for k, v := range sc.env {
			envList = append(envList, k+"="+v)
		}
		cfg, err := node.Load(sc.file, envList)
		if err != nil {
			t.Fatal(err)
		}
		spec := get(sc.pod, "spec")
		c := clusterdContainer(spec)
		if cfg.Clustering.NodeName != "app-0" {
			t.Errorf("node name %q does not come from the pod name", cfg.Clustering.NodeName)
		}
		if !strings.HasPrefix(sc.env["CLUSTERING_PASSWORD"], "SECRET-") {
			t.Errorf("the cluster password does not come from a Secret: %q", sc.env["CLUSTERING_PASSWORD"])
		}
		// The app container connects as a service user of the node, with a
		// password of its own: never the cluster secret.
		for _, app := range list(spec, "containers") {
			if app.(map[string]any)["name"] == c["name"] {
				continue
			}
			appEnv := podEnv(t, app.(map[string]any))
			user, pass := appEnv["NATS_USER"], appEnv["NATS_PASSWORD"]
			if user == cfg.Clustering.User || pass == sc.env["CLUSTERING_PASSWORD"] || !strings.HasPrefix(pass, "SECRET-") {
				t.Errorf("the app connects as %q with %q: the cluster secret, or not from a Secret", user, pass)
			}
			if !slices.Contains(cfg.Clustering.LeafServer.Users, node.LeafUser{User: user, Password: pass}) {
				t.Errorf("the app's NATS user %q (%q) is not one of the node's users %+v", user, pass, cfg.Redacted().Clustering.LeafServer.Users)
			}
		}
		if !strings.HasPrefix(cfg.Clustering.LeafServer.Operator.Password, "SECRET-") {
			t.Errorf("the operator's password does not come from a Secret")
		}
		if src := mountedFrom(spec, c, cfg.Auth.IssuerKeyFile); !strings.HasPrefix(src, "secret:") {
			t.Errorf("auth.issuerKeyFile %s is not mounted from a Secret (%q)", cfg.Auth.IssuerKeyFile, src)
		}
		if src := mountedFrom(spec, c, cfg.RootPath); !strings.HasPrefix(src, "volume:") {
			t.Errorf("rootPath %s is not on a volume (%q)", cfg.RootPath, src)
		}
		if h := cfg.OperationsAPI.Network.Host; h == "127.0.0.1" || h == "localhost" {
			t.Errorf("operationsApi.network.host %s: the kubelet cannot reach the probes", h)
		}
		ports := map[string]int{}
		for _, p := range list(c, "ports") {
			ports[str(p, "name")] = get(p, "containerPort").(int)
		}
		probePort, scheme := checkOperationsAPIExample(t, cfg, spec, c)
		for key, want := range map[string]int{
			"the operations API's probed port":            probePort,
			"clustering.hubServer.network.port":           cfg.Clustering.HubServer.Network.Port,
			"clustering.hubServer.leafNodes.network.port": cfg.Clustering.HubServer.LeafNodes.Network.Port,
			"clustering.hubServer.cluster.network.port":   cfg.Clustering.HubServer.Cluster.Network.Port,
			"clustering.leafServer.network.port":          cfg.Clustering.LeafServer.Network.Port,
		} {
			if !slices.Contains(mapValues(ports), want) {
				t.Errorf("%s %d is not a container port %v", key, want, ports)
			}
		}
		for probe, path := range map[string]string{"livenessProbe": "/livez", "readinessProbe": "/readyz"} {
			if got := str(c, probe, "httpGet", "path"); got != path {
				t.Errorf("%s path %q, want %s", probe, got, path)
			}
			port := get(c, probe, "httpGet", "port")
			if name, ok := port.(string); ok {
				port = ports[name]
			}
			if port != probePort {
				t.Errorf("%s on port %v, want the operations API port %d", probe, port, probePort)
			}
			if got := str(c, probe, "httpGet", "scheme"); got != scheme && !(scheme == "HTTP" && got == "") {
				t.Errorf("%s scheme %q, want %s", probe, got, scheme)
			}
		}
		// Seed routes: <statefulset>-<i>.<serviceName> for every replica.
		for _, d := range yamlDocs(t, filepath.Join(deployDir, "kubernetes", "clusterd-sidecar.yaml")) {
			if d["kind"] != "StatefulSet" {
				continue
			}
			var want []node.RouteConfig
			for i := 0; i < get(d, "spec", "replicas").(int); i++ {
				want = append(want, node.RouteConfig{Host: fmt.Sprintf("%s-%d.%s", str(d, "metadata", "name"), i, str(d, "spec", "serviceName")), Port: cfg.Clustering.HubServer.Cluster.Network.Port})
			}
			if got := cfg.Clustering.HubServer.Cluster.Network.Routes; !reflect.DeepEqual(got, want) {
				t.Errorf("seed routes %v, want the StatefulSet's pods %v", got, want)
			}
		}
	}
	if !found {
		t.Fatal("no Kubernetes example found")
	}
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// The systemd unit runs the shipped config with the shipped env file, checks
// it before starting, and keeps rootPath in its state directory.
func TestSystemdUnitMatchesItsConfig(t *testing.T) {
	dir := filepath.Join(deployDir, "systemd")
	b, err := os.ReadFile(filepath.Join(dir, "clusterd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = v
		}
	}
	cfgPath := "/etc/clusterd/clusterd.yaml"
	if unit["ExecStart"] != "/usr/local/bin/clusterd --config "+cfgPath {
		t.Fatalf("ExecStart=%s", unit["ExecStart"])
	}
	if unit["ExecStartPre"] != "/usr/local/bin/clusterd config check --config "+cfgPath {
		t.Fatalf("ExecStartPre=%s", unit["ExecStartPre"])
	}
	if !fileExists(filepath.Join(dir, path.Base(cfgPath))) || !fileExists(filepath.Join(dir, path.Base(unit["EnvironmentFile"]))) {
		t.Fatalf("the unit's config %s or env file %s is not shipped beside it", cfgPath, unit["EnvironmentFile"])
	}
	envList := os.Environ()
	for k, v := range readEnvFile(t, filepath.Join(dir, path.Base(unit["EnvironmentFile"]))) {
		envList = append(envList, k+"="+v)
	}
	cfg, err := node.Load(filepath.Join(dir, "clusterd.yaml"), envList)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootPath != "/var/lib/"+unit["StateDirectory"] {
		t.Fatalf("rootPath %s is not the unit's StateDirectory %s", cfg.RootPath, unit["StateDirectory"])
	}
	if cfg.Clustering.Password == "" {
		t.Fatal("the env file does not set CLUSTERING_PASSWORD")
	}
	if len(cfg.Clustering.LeafServer.Users) == 0 || cfg.Clustering.LeafServer.Operator.Password == "" {
		t.Fatal("the env file does not set the services' users and the operator's password")
	}
	if out, err := exec.Command("systemd-analyze", "--version").CombinedOutput(); err == nil && len(out) > 0 {
		// Verify the unit with the binary and env file paths pointed at real files.
		bin := filepath.Join(t.TempDir(), "clusterd")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		u := strings.ReplaceAll(string(b), "/usr/local/bin/clusterd", bin)
		envFile, err := filepath.Abs(filepath.Join(dir, "clusterd.env"))
		if err != nil {
			t.Fatal(err)
		}
		u = strings.ReplaceAll(u, unit["EnvironmentFile"], envFile)
		uf := filepath.Join(t.TempDir(), "clusterd.service")
		if err := os.WriteFile(uf, []byte(u), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("systemd-analyze", "verify", uf).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// The README's way to make the issuer key Secret (openssl genpkey -algorithm
// ed25519) yields a key clusterd loads and whose tokens it accepts.
func TestOpenSSLIssuerKeyWorks(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	file := filepath.Join(t.TempDir(), "issuer.key")
	out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", file).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	key, created, err := auth.LoadOrCreateIssuerKey(file)
	if err != nil || created {
		t.Fatalf("load openssl key: created=%v %v", created, err)
	}
	tok, err := auth.Mint(key, "admin", "super_user", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewVerifier(auth.Limits{}, key.Public().(ed25519.PublicKey)).Verify(tok); err != nil {
		t.Fatal(err)
	}
}
