package node_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := node.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.RootPath != "./clusterd-data" || !c.Clustering.Enabled || c.Clustering.User != "cluster_user" || c.Clustering.NodeName == "" {
		t.Fatalf("defaults: %+v", c)
	}
	ports := []int{c.OperationsAPI.Network.Port, c.Clustering.HubServer.Network.Port, c.Clustering.HubServer.LeafNodes.Network.Port,
		c.Clustering.HubServer.Cluster.Network.Port, c.Clustering.LeafServer.Network.Port}
	if !reflect.DeepEqual(ports, []int{9925, 9930, 9931, 9932, 9940}) {
		t.Fatalf("default ports %v", ports)
	}
	if c.OperationsAPI.Network.Host != "127.0.0.1" || c.Clustering.HubServer.Network.Host != "127.0.0.1" {
		t.Fatalf("defaults must listen on 127.0.0.1: %+v", c)
	}
	if c.Clustering.RequestTimeout != 2*time.Second {
		t.Fatalf("default request timeout %v", c.Clustering.RequestTimeout)
	}
	if strings.ContainsAny(c.Clustering.NodeName, " \t.,*>") {
		t.Fatalf("node name from the hostname is not valid: %q", c.Clustering.NodeName)
	}
}

func TestConfigFileWithEnvOverrides(t *testing.T) {
	file := writeFile(t, "clusterd.yaml", `
rootPath: /var/lib/clusterd
operationsApi:
  network: {host: 127.0.0.1, port: 19925}
auth:
  trustedIssuers: ["ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
clustering:
  enabled: true
  nodeName: from-file
  user: svc
  password: file-secret
  requestTimeout: 3s
  hubServer:
    network: {host: 127.0.0.1, port: 19930}
    leafNodes: {network: {port: 19931}}
    cluster:
      name: prod
      network:
        port: 19932
        routes:
          - {host: 10.0.0.1, port: 9932}
  leafServer:
    network:
      port: 19940
      routes: [{host: 10.0.0.2, port: 9931}]
    users: [{user: orders, password: pw}]
    streams: {maxAge: 24h, maxMsgs: 1000}
`)
	env := []string{
		"PATH=/usr/bin",
		"CLUSTERING_NODENAME=n2",
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT=29932",
		"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_ROUTES=[{host: 10.0.0.7, port: 9932}, {host: 10.0.0.8, port: 9932}]",
		"CLUSTERING_LEAFSERVER_NETWORK_PORT=0",
		"OPERATIONSAPI_NETWORK_PORT=0",
		"CLUSTERING_PASSWORD=env-secret",
		"CLUSTERING_LEAFSERVER_STREAMS_MAXBYTES=1048576",
		"CLUSTERING_LEAFSERVER_STREAMS_DUPLICATEWINDOW=30s",
		"ROOTPATH=/tmp/n2",
		"CLUSTERING_SOMETHINGELSE=ignored",
	}
	c, err := node.Load(file, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"rootPath (env)", c.RootPath, "/tmp/n2"},
		{"nodeName (env)", c.Clustering.NodeName, "n2"},
		{"password (env)", c.Clustering.Password, "env-secret"},
		{"user (file)", c.Clustering.User, "svc"},
		{"operations port (env 0)", c.OperationsAPI.Network.Port, 0},
		{"hub port (file)", c.Clustering.HubServer.Network.Port, 19930},
		{"hub leafnodes port (file)", c.Clustering.HubServer.LeafNodes.Network.Port, 19931},
		{"cluster port (env)", c.Clustering.HubServer.Cluster.Network.Port, 29932},
		{"cluster name (file)", c.Clustering.HubServer.Cluster.Name, "prod"},
		{"hub routes (env list)", c.Clustering.HubServer.Cluster.Network.Routes, []node.RouteConfig{{Host: "10.0.0.7", Port: 9932}, {Host: "10.0.0.8", Port: 9932}}},
		{"leaf port (env 0)", c.Clustering.LeafServer.Network.Port, 0},
		{"leaf routes (file)", c.Clustering.LeafServer.Network.Routes, []node.RouteConfig{{Host: "10.0.0.2", Port: 9931}}},
		{"leaf users (file)", c.Clustering.LeafServer.Users, []node.LeafUser{{User: "orders", Password: "pw"}}},
		{"request timeout (file)", c.Clustering.RequestTimeout, 3 * time.Second},
		{"streams (file + env)", c.Clustering.LeafServer.Streams, node.Streams{MaxAge: 24 * time.Hour, MaxMsgs: 1000, MaxBytes: 1 << 20, DuplicateWindow: 30 * time.Second}},
		{"trusted issuers (file)", len(c.Auth.TrustedIssuers), 1},
		{"logging (default)", c.Logging, node.Logging{Level: "info", Format: "json"}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}

	// Env alone, no file.
	c, err = node.Load("", []string{"CLUSTERING_NODENAME=solo", "CLUSTERING_ENABLED=false", "CLUSTERING_HUBSERVER_NETWORK_HOST=0.0.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Clustering.NodeName != "solo" || c.Clustering.Enabled || c.Clustering.HubServer.Network.Host != "0.0.0.0" || c.Clustering.HubServer.Network.Port != 9930 {
		t.Fatalf("env-only config: %+v", c.Clustering)
	}
}

func TestInvalidConfigMessages(t *testing.T) {
	cases := []struct {
		name string
		file string // YAML, or "" for none
		env  []string
		want string // exact error text; "%FILE%" stands for the file's path
	}{
		{"unknown key", "clustering:\n  nodeName: a\n  nodname: b\n", nil,
			"config %FILE%: clustering.nodname (line 3) is not a configuration key (did you mean clustering.nodeName?)"},
		{"wrong type in file", "clustering:\n  hubServer:\n    network: {port: nine}\n", nil,
			"config %FILE%: clustering.hubServer.network.port (line 3) must be a whole number, got nine"},
		{"not yaml", "clustering: [\n", nil,
			"parse config %FILE%: yaml: line 1: did not find expected node content"},
		{"wrong type in env", "", []string{"CLUSTERING_HUBSERVER_NETWORK_PORT=abc"},
			"environment CLUSTERING_HUBSERVER_NETWORK_PORT: clustering.hubServer.network.port must be a whole number, got abc"},
		{"bad route in env", "", []string{"CLUSTERING_HUBSERVER_CLUSTER_NETWORK_ROUTES=[{host: h, port: x}]"},
			"environment CLUSTERING_HUBSERVER_CLUSTER_NETWORK_ROUTES: clustering.hubServer.cluster.network.routes[0].port must be a whole number, got x"},
		{"bad node name", "", []string{"CLUSTERING_NODENAME=a.b"},
			`invalid configuration: clustering.nodeName "a.b" must not contain whitespace, '.', ',', '*' or '>'`},
		{"empty node name", "clustering: {nodeName: ''}\n", nil,
			"invalid configuration: clustering.nodeName is required"},
		{"port out of range", "", []string{"OPERATIONSAPI_NETWORK_PORT=70000"},
			"invalid configuration: operationsApi.network.port must be between 0 and 65535 (or -1 to turn it off), got 70000"},
		{"same port twice", "", []string{"CLUSTERING_HUBSERVER_NETWORK_PORT=9940"},
			"invalid configuration: clustering.hubServer.network.port and clustering.leafServer.network.port both use port 9940"},
		{"route without host", "clustering: {leafServer: {network: {routes: [{port: 1}]}}}\n", nil,
			"invalid configuration: clustering.leafServer.network.routes[0] needs a host and a port 1-65535"},
		{"duplicate window as seconds", "clustering: {leafServer: {streams: {duplicateWindow: 120}}}\n", nil,
			"config %FILE%: clustering.leafServer.streams.duplicateWindow (line 1) must be a duration with a unit, like 90s, 30m or 168h, got 120 (a number without a unit; HarperDB's value is in seconds: for 120 seconds write 2m)"},
		{"HarperDB's maxAge in seconds", "clustering:\n  leafServer:\n    streams:\n      maxAge: 604800\n", nil,
			"config %FILE%: clustering.leafServer.streams.maxAge (line 4) must be a duration with a unit, like 90s, 30m or 168h, got 604800 (a number without a unit; HarperDB's value is in seconds: for 604800 seconds write 168h)"},
		{"maxAge in seconds from env", "", []string{"CLUSTERING_LEAFSERVER_STREAMS_MAXAGE=86400"},
			"environment CLUSTERING_LEAFSERVER_STREAMS_MAXAGE: clustering.leafServer.streams.maxAge must be a duration with a unit, like 90s, 30m or 168h, got 86400 (a number without a unit; HarperDB's value is in seconds: for 86400 seconds write 24h)"},
		{"typo inside a list item", "clustering:\n  hubServer:\n    cluster:\n      network:\n        routes:\n          - {hots: a, port: 1}\n", nil,
			"config %FILE%: clustering.hubServer.cluster.network.routes[0].hots (line 6) is not a configuration key (did you mean clustering.hubServer.cluster.network.routes[0].host?)"},
		{"a list where a string goes, and a key with no near match", "clustering:\n  nodeName: [a, b]\n  colour: blue\n", nil,
			"config %FILE%: clustering.nodeName (line 2) must be a string, got a list; clustering.colour (line 3) is not a configuration key"},
		{"a word where true or false goes", "clustering:\n  enabled: maybe\n", nil,
			"config %FILE%: clustering.enabled (line 2) must be true or false, got maybe"},
		{"duplicate window too short", "", []string{"CLUSTERING_LEAFSERVER_STREAMS_DUPLICATEWINDOW=50ms"},
			"invalid configuration: clustering.leafServer.streams.duplicateWindow must be 0 (the default) or at least 100ms, got 50ms"},
		{"duplicate window negative", "", []string{"CLUSTERING_LEAFSERVER_STREAMS_DUPLICATEWINDOW=-1s"},
			"invalid configuration: clustering.leafServer.streams.duplicateWindow must be 0 (the default) or at least 100ms, got -1s"},
		{"duplicate window longer than maxAge", "clustering: {leafServer: {streams: {maxAge: 1m, duplicateWindow: 5m}}}\n", nil,
			"invalid configuration: clustering.leafServer.streams.duplicateWindow (5m0s) must not be longer than maxAge (1m0s)"},
		{"maxAge too short", "", []string{"CLUSTERING_LEAFSERVER_STREAMS_MAXAGE=10ms"},
			"invalid configuration: clustering.leafServer.streams.maxAge must be 0 (unlimited) or at least 100ms, got 10ms"},
		{"every problem at once", "", []string{"CLUSTERING_USER=", "ROOTPATH=", "CLUSTERING_TLS_CERTIFICATE=c.pem", "LOGGING_FORMAT=xml", "CLUSTERING_REQUESTTIMEOUT=-1s"},
			"invalid configuration: rootPath is required; clustering.user is required; clustering.tls.certificate and clustering.tls.privateKey go together; " +
				"clustering.requestTimeout must not be negative; logging.format must be json or console"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, "clusterd.yaml", c.file)
			}
			_, err := node.Load(path, c.env)
			want := strings.ReplaceAll(c.want, "%FILE%", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error\n got: %v\nwant: %s", err, want)
			}
		})
	}
	if _, err := node.Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}
