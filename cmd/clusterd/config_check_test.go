package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clusterd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheckRedactsSecrets(t *testing.T) {
	p := writeConfig(t, `
clustering:
  nodeName: n1
  password: hunter2-cluster
  leafServer:
    users:
      - {user: app, password: hunter2-app}
    operator: {password: hunter2-operator}
`)
	t.Setenv("CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT", "19932")
	out, warnings, err := configCheck(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if warnings != "" {
		t.Fatalf("warnings: %s", warnings)
	}
	for _, secret := range []string{"hunter2-cluster", "hunter2-app", "hunter2-operator"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%s printed:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"# clusterd configuration: valid. Effective values from " + p,
		"  password: <redacted>\n",
		"      - user: app\n        password: <redacted>\n",
		"    operator:\n      user: operator\n      password: <redacted>\n",
		"      port: 19932\n", // the env override is in effect
		"nodeName: n1\n",
		"requestTimeout: 2s\n", // defaults are shown too
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
}

func TestConfigCheckRefusesBadConfigs(t *testing.T) {
	for _, tc := range []struct{ name, body, env, want string }{
		{"unknown key, with its line", "clustering:\n  nodeName: n1\n  nodename: n2\n", "", "clustering.nodename (line 3) is not a configuration key (did you mean clustering.nodeName?)"},
		{"log level the node refuses", "clustering:\n  nodeName: n1\n", "LOGGING_LEVEL=verbose", `logging.level must be debug, info, warn or error, got "verbose"`},
		{"issuer key that is not PEM", "clustering:\n  nodeName: n1\nauth:\n  issuerKeyFile: %NOTPEM%\n", "", `auth.issuerKeyFile: %NOTPEM% is not PEM (want a PEM "PRIVATE KEY" block holding an Ed25519 key, as openssl genpkey -algorithm ed25519 writes)`},
		{"a leaf host no listener binds", "clustering:\n  nodeName: n1\n  leafServer:\n    network:\n      host: 0.0.0.0\n", "", "clustering.leafServer.network.host is 0.0.0.0, but every NATS listener of a node binds one host, 127.0.0.1"},
		{"invalid node name", "clustering:\n  nodeName: a.b\n", "", `clustering.nodeName "a.b" must not contain whitespace, '.', ',', '*' or '>'`},
		{"port clash", "clustering:\n  nodeName: n1\n  hubServer:\n    network:\n      port: 9940\n", "", "clustering.hubServer.network.port and clustering.leafServer.network.port both use port 9940"},
		{"untrusted issuer format", "clustering:\n  nodeName: n1\nauth:\n  trustedIssuers: [abc]\n", "", `auth.trustedIssuers[0]: trusted issuer "abc" must start with "ed25519:"`},
		{"missing TLS files", "clustering:\n  nodeName: n1\n  tls:\n    certificate: /nonexistent/cert.pem\n    privateKey: /nonexistent/key.pem\n", "", "clustering.tls: open /nonexistent/cert.pem: no such file or directory"},
		{"a service user without a password", "clustering:\n  nodeName: n1\n  leafServer:\n    users: [{user: app}]\n", "", "clustering.leafServer.users[0].password is required"},
		{"the cluster user as a client", "clustering:\n  nodeName: n1\n  leafServer:\n    users: [{user: cluster_user, password: x}]\n", "", `clustering.leafServer.users[0].user "cluster_user" is the cluster user (clustering.user)`},
		{"the cluster password as a client's", "clustering:\n  nodeName: n1\n  password: same\n  leafServer:\n    operator: {password: same}\n", "", "clustering.leafServer.operator.password is the cluster password"},
		{"two users of one name", "clustering:\n  nodeName: n1\n  leafServer:\n    users: [{user: operator, password: x}]\n", "", `clustering.leafServer.users[0] and clustering.leafServer.operator are both user "operator"`},
		{"bad env override", "clustering:\n  nodeName: n1\n", "CLUSTERING_HUBSERVER_NETWORK_PORT=lots", "environment CLUSTERING_HUBSERVER_NETWORK_PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if k, v, ok := strings.Cut(tc.env, "="); ok {
				env[k] = v
			}
			notPEM := filepath.Join(t.TempDir(), "issuer.key")
			if err := os.WriteFile(notPEM, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.body = strings.ReplaceAll(tc.body, "%NOTPEM%", notPEM)
			tc.want = strings.ReplaceAll(tc.want, "%NOTPEM%", notPEM)
			out, _, err := configCheck(t, writeConfig(t, tc.body), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v\n%s", tc.want, err, out)
			}
			if out != "" {
				t.Fatalf("an invalid config was printed:\n%s", out)
			}
		})
	}
}

func TestConfigCheckWarnsAboutMisspeltEnv(t *testing.T) {
	t.Setenv("CLUSTERING_NODE_NAME", "n9")
	t.Setenv("CLUSTERING_NODENAME", "n1")
	t.Setenv("LOGGING_LEVEL", "debug")
	var out, errb bytes.Buffer
	if err := run([]string{"config", "check"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if got := errb.String(); got != "clusterd: warning: environment variable CLUSTERING_NODE_NAME names no configuration key and is ignored\n" {
		t.Fatalf("stderr = %q", got)
	}
	if !strings.Contains(out.String(), "Effective values from defaults") || !strings.Contains(out.String(), "nodeName: n1") || !strings.Contains(out.String(), "level: debug") {
		t.Fatalf("stdout:\n%s", out.String())
	}
}

func TestConfigNeedsASubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"config"}, &out, &errb); err == nil || err.Error() != "usage: clusterd config check [--config FILE]" {
		t.Fatalf("clusterd config: %v", err)
	}
}

// config check shows what the node will use where the file leaves a value
// to the node: the generated password's file, the issuer key file, the one
// NATS host, the duplicate window, and once the node has run, that the
// password is the one it keeps.
func TestConfigCheckShowsEffectiveValues(t *testing.T) {
	root := t.TempDir()
	p := writeConfig(t, "rootPath: "+root+"\nclustering:\n  nodeName: n1\n  hubServer:\n    network:\n      host: 0.0.0.0\n")
	out, _, err := configCheck(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  password: <generated on first start into " + filepath.Join(root, "cluster-password") + ">\n",
		"  issuerKeyFile: " + filepath.Join(root, "issuer.key") + "\n",
		"      duplicateWindow: 2m0s\n",
		"    network:\n      host: 0.0.0.0\n      port: 9940\n", // the leaf server binds the hub's host
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "cluster-password"), []byte("s3cret-generated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = configCheck(t, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "  password: <redacted, generated and kept in "+filepath.Join(root, "cluster-password")+">\n") || strings.Contains(out, "s3cret") {
		t.Fatalf("after the first start:\n%s", out)
	}
}
