package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
	"gopkg.in/yaml.v3"
)

// Config is clusterd's configuration: HarperDB's clustering.* key paths plus
// rootPath, operationsApi and auth. Every key can be overridden by an
// environment variable named after its path (CLUSTERING_NODENAME=n1).
type Config struct {
	RootPath      string        `yaml:"rootPath"`
	OperationsAPI OperationsAPI `yaml:"operationsApi"`
	// TLS is HarperDB's top-level tls section: the operations API's HTTPS
	// certificate unless operationsApi.tls overrides it (tlsconfig.go).
	TLS        TLS        `yaml:"tls"`
	Auth       Auth       `yaml:"auth"`
	Clustering Clustering `yaml:"clustering"`
	Logging    Logging    `yaml:"logging"`
}

type Network struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

type RouteConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

type OperationsAPI struct {
	Network OpsNetwork `yaml:"network"`
	TLS     TLS        `yaml:"tls"`
}

// OpsNetwork is the operations API's listener and its limits (see
// node/http_limits.go): slow or hostile HTTP clients must never take the
// file descriptors the NATS listeners need.
type OpsNetwork struct {
	Host string `yaml:"host"`
	// Port serves plain HTTP; Off (-1) turns it off. Beyond loopback it
	// needs AllowCleartext (tlsconfig.go).
	Port int `yaml:"port"`
	// SecurePort serves HTTPS with the tls section's certificate (a
	// self-signed one generated under rootPath when none is set); Off (the
	// default) turns it off.
	SecurePort int `yaml:"securePort"`
	// MTLS asks HTTPS clients for certificates (HarperDB's mtls switch).
	MTLS MTLS `yaml:"mtls"`
	// AllowCleartext says plain HTTP beyond loopback is intended (e.g.
	// behind a proxy that terminates TLS on the same host).
	AllowCleartext bool `yaml:"allowCleartext"`
	// MaxConnections bounds open HTTP connections (further ones wait in
	// the kernel's backlog); it is also capped at a quarter of the process'
	// file descriptor limit.
	MaxConnections int `yaml:"maxConnections"`
	// HeadersTimeout bounds reading a request's headers, Timeout the whole
	// request (headers and body), KeepAliveTimeout an idle connection.
	HeadersTimeout   time.Duration `yaml:"headersTimeout"`
	Timeout          time.Duration `yaml:"timeout"`
	KeepAliveTimeout time.Duration `yaml:"keepAliveTimeout"`
	// CORS answers browsers' cross-origin requests (HarperDB Studio) from
	// the origins in CORSAccessList, or from any origin when it is empty;
	// HarperDB's keys and default (on).
	CORS           bool     `yaml:"cors"`
	CORSAccessList []string `yaml:"corsAccessList"`
}

type Auth struct {
	IssuerKeyFile  string   `yaml:"issuerKeyFile"`
	TrustedIssuers []string `yaml:"trustedIssuers"`
	// Token lifetimes (0: the default; node/auth.go). maxTokenTTL bounds
	// every token that authorizes operations, maxRefreshTokenTTL refresh
	// tokens; the two TTLs are what create_authentication_tokens hands out.
	MaxTokenTTL        time.Duration `yaml:"maxTokenTTL"`
	MaxRefreshTokenTTL time.Duration `yaml:"maxRefreshTokenTTL"`
	OperationTokenTTL  time.Duration `yaml:"operationTokenTTL"`
	RefreshTokenTTL    time.Duration `yaml:"refreshTokenTTL"`
	// The super_user a first start creates (HDB_ADMIN_USERNAME and
	// HDB_ADMIN_PASSWORD work too); without a password one is generated and
	// printed once.
	AdminUser     string `yaml:"adminUser"`
	AdminPassword string `yaml:"adminPassword"`
}

type Logging struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type Clustering struct {
	Enabled    bool       `yaml:"enabled"`
	NodeName   string     `yaml:"nodeName"`
	User       string     `yaml:"user"`
	Password   string     `yaml:"password"`
	HubServer  HubServer  `yaml:"hubServer"`
	LeafServer LeafServer `yaml:"leafServer"`
	TLS        TLS        `yaml:"tls"`
	// RequestTimeout bounds inter-node calls made while serving a request.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
}

type HubServer struct {
	Network   Network      `yaml:"network"`
	LeafNodes HubLeafNodes `yaml:"leafNodes"`
	Cluster   HubCluster   `yaml:"cluster"`
}

type HubLeafNodes struct {
	Network Network `yaml:"network"`
}

type HubCluster struct {
	Name    string         `yaml:"name"`
	Network ClusterNetwork `yaml:"network"`
}

type ClusterNetwork struct {
	Host   string        `yaml:"host"`
	Port   int           `yaml:"port"`
	Routes []RouteConfig `yaml:"routes"`
}

type LeafServer struct {
	Network LeafNetwork `yaml:"network"`
	// Users are the services' NATS users; each is alone in an account of
	// its own (docs/security.md).
	Users []LeafUser `yaml:"users"`
	// Operator is the operator's NATS user (the `nats` CLI), an app user
	// like the others. Its password is generated into
	// <rootPath>/operator-password when not configured.
	Operator LeafUser `yaml:"operator"`
	Streams  Streams  `yaml:"streams"`
	// SyncAlways makes JetStream fsync every transaction before acknowledging
	// it (else it syncs every 2 minutes: an OS crash can lose acknowledged
	// transactions that a process crash cannot).
	SyncAlways bool `yaml:"syncAlways"`
}

type LeafNetwork struct {
	Host   string        `yaml:"host"`
	Port   int           `yaml:"port"`
	Routes []RouteConfig `yaml:"routes"`
}

type LeafUser struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Streams are the limits of transaction storage (0 = unlimited): MaxAge per
// transaction, MaxBytes for the node's whole transaction stream, MaxMsgs per
// table and origin node (JetStream's per-subject limit).
type Streams struct {
	MaxAge   time.Duration `yaml:"maxAge"`
	MaxBytes int64         `yaml:"maxBytes"`
	MaxMsgs  int64         `yaml:"maxMsgs"`
	// DuplicateWindow is how long the transaction stream remembers a
	// message id (Nats-Msg-Id) to drop a repeated publish. 0 = 2m, or
	// maxAge when that is shorter.
	DuplicateWindow time.Duration `yaml:"duplicateWindow"`
}

type TLS struct {
	Certificate          string `yaml:"certificate"`
	PrivateKey           string `yaml:"privateKey"`
	CertificateAuthority string `yaml:"certificateAuthority"`
}

// Default returns the configuration of `go run ./cmd/clusterd` with no file.
func Default() Config {
	host, _ := os.Hostname()
	name := sanitizeNodeName(host)
	if name == "" {
		name = "node1"
	}
	return Config{
		RootPath: "./clusterd-data",
		OperationsAPI: OperationsAPI{Network: OpsNetwork{Host: "127.0.0.1", Port: 9925, SecurePort: Off,
			MaxConnections: 1000, HeadersTimeout: 5 * time.Second, Timeout: 10 * time.Second, KeepAliveTimeout: 5 * time.Second, CORS: true}},
		Logging: Logging{Level: "info", Format: "json"},
		Clustering: Clustering{
			Enabled:  true,
			NodeName: name,
			User:     "cluster_user",
			HubServer: HubServer{
				Network:   Network{Host: "127.0.0.1", Port: 9930},
				LeafNodes: HubLeafNodes{Network: Network{Port: 9931}},
				Cluster:   HubCluster{Name: "clusterd", Network: ClusterNetwork{Port: 9932}},
			},
			LeafServer:     LeafServer{Network: LeafNetwork{Port: 9940}, Operator: LeafUser{User: "operator"}},
			RequestTimeout: 2 * time.Second,
		},
	}
}

func sanitizeNodeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == ',' || r == '*' || r == '>':
			return '-'
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			return -1
		}
		return r
	}, s)
}

// Load reads path (if not empty) over the defaults, then applies environment
// overrides from env (os.Environ() form), then validates.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	tree := map[string]any{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := yaml.Unmarshal(b, &tree); err != nil {
			return cfg, fmt.Errorf("parse config %s: %w", path, err)
		}
		if tree == nil {
			tree = map[string]any{}
		}
		// Type-check the file as written, so problems name its own lines.
		if err := decodeStrict(b, &Config{}); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, describeYAML(b, err, true))
		}
	}
	if err := applyEnv(tree, env); err != nil {
		return cfg, err
	}
	nullPortsOff(tree)
	b, err := yaml.Marshal(tree)
	if err != nil {
		return cfg, err
	}
	if err := decodeStrict(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config: %w", describeYAML(b, err, false))
	}
	return cfg, cfg.Validate()
}

// decodeStrict decodes YAML into out, refusing unknown keys.
func decodeStrict(b []byte, out *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// envKeys maps upper-cased key paths (CLUSTERING_HUBSERVER_NETWORK_PORT) to
// their YAML path segments, from the Config struct's tags.
func envKeys() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := append(append([]string{}, path...), tag)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				if reflect.PointerTo(f.Type).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
					// Also settable whole (OPERATIONSAPI_NETWORK_MTLS=true).
					out[strings.ToUpper(strings.Join(p, "_"))] = p
				}
				walk(f.Type, p)
				continue
			}
			out[strings.ToUpper(strings.Join(p, "_"))] = p
		}
	}
	walk(reflect.TypeOf(Config{}), nil)
	return out
}

// applyEnv overrides tree with matching environment variables. Values are
// read as YAML, so CLUSTERING_HUBSERVER_CLUSTER_NETWORK_ROUTES='[{host: h, port: 1}]'
// works as well as plain scalars.
func applyEnv(tree map[string]any, env []string) error {
	keys := envKeys()
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		path, ok := keys[strings.ToUpper(k)]
		if !ok {
			continue
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return fmt.Errorf("environment %s: %w", k, err)
		}
		if val == nil {
			val = ""
		}
		// Type-check this override alone, so a problem names the variable.
		one := map[string]any{}
		setPath(one, path, val)
		nullPortsOff(one) // OPERATIONSAPI_NETWORK_PORT= (or null) turns plain HTTP off
		if b, err := yaml.Marshal(one); err == nil {
			if err := decodeStrict(b, &Config{}); err != nil {
				return fmt.Errorf("environment %s: %w", k, describeYAML(b, err, false))
			}
		}
		setPath(tree, path, val)
	}
	return nil
}

// setPath sets tree[path[0]][path[1]]… = val, creating maps on the way.
func setPath(tree map[string]any, path []string, val any) {
	node := tree
	for _, seg := range path[:len(path)-1] {
		next, ok := node[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			node[seg] = next
		}
		node = next
	}
	node[path[len(path)-1]] = val
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var problems []string
	n := c.Clustering.NodeName
	if n == "" {
		problems = append(problems, "clustering.nodeName is required")
	} else if strings.ContainsAny(n, " \t\r\n.,*>") {
		problems = append(problems, fmt.Sprintf("clustering.nodeName %q must not contain whitespace, '.', ',', '*' or '>'", n))
	} else if p := storage.NameProblem(n); p != "" {
		problems = append(problems, fmt.Sprintf("clustering.nodeName %q %s", n, p))
	}
	if c.RootPath == "" {
		problems = append(problems, "rootPath is required")
	}
	if c.Clustering.User == "" {
		problems = append(problems, "clustering.user is required")
	}
	problems = append(problems, c.appUserProblems()...)
	ports := map[string]int{
		"operationsApi.network.port":                  c.OperationsAPI.Network.Port,
		"operationsApi.network.securePort":            c.OperationsAPI.Network.SecurePort,
		"clustering.hubServer.network.port":           c.Clustering.HubServer.Network.Port,
		"clustering.hubServer.leafNodes.network.port": c.Clustering.HubServer.LeafNodes.Network.Port,
		"clustering.hubServer.cluster.network.port":   c.Clustering.HubServer.Cluster.Network.Port,
		"clustering.leafServer.network.port":          c.Clustering.LeafServer.Network.Port,
	}
	seen := map[int]string{}
	for _, k := range []string{"operationsApi.network.port", "operationsApi.network.securePort", "clustering.hubServer.network.port", "clustering.hubServer.leafNodes.network.port", "clustering.hubServer.cluster.network.port", "clustering.leafServer.network.port"} {
		p := ports[k]
		if p == Off && strings.HasPrefix(k, "operationsApi.") {
			continue // that listener is off
		}
		if p < 0 || p > 65535 {
			off := ""
			if strings.HasPrefix(k, "operationsApi.") {
				off = " (or -1 to turn it off)"
			}
			problems = append(problems, fmt.Sprintf("%s must be between 0 and 65535%s, got %d", k, off, p))
		}
		if p != 0 {
			if other, dup := seen[p]; dup {
				problems = append(problems, fmt.Sprintf("%s and %s both use port %d", other, k, p))
			}
			seen[p] = k
		}
	}
	for i, r := range c.Clustering.HubServer.Cluster.Network.Routes {
		if r.Host == "" || r.Port <= 0 || r.Port > 65535 {
			problems = append(problems, fmt.Sprintf("clustering.hubServer.cluster.network.routes[%d] needs a host and a port 1-65535", i))
		}
	}
	for i, r := range c.Clustering.LeafServer.Network.Routes {
		if r.Host == "" || r.Port <= 0 || r.Port > 65535 {
			problems = append(problems, fmt.Sprintf("clustering.leafServer.network.routes[%d] needs a host and a port 1-65535", i))
		}
	}
	t := c.Clustering.TLS
	if (t.Certificate == "") != (t.PrivateKey == "") {
		problems = append(problems, "clustering.tls.certificate and clustering.tls.privateKey go together")
	}
	problems = append(problems, c.OperationsAPI.Network.problems()...)
	problems = append(problems, c.operationsAPIProblems()...)
	if c.Clustering.RequestTimeout < 0 {
		problems = append(problems, "clustering.requestTimeout must not be negative")
	}
	st := c.Clustering.LeafServer.Streams
	if st.MaxAge < 0 || st.MaxAge > 0 && st.MaxAge < 100*time.Millisecond {
		problems = append(problems, fmt.Sprintf("clustering.leafServer.streams.maxAge must be 0 (unlimited) or at least 100ms, got %v", st.MaxAge))
	}
	switch dw := st.DuplicateWindow; {
	case dw < 0 || dw > 0 && dw < 100*time.Millisecond:
		problems = append(problems, fmt.Sprintf("clustering.leafServer.streams.duplicateWindow must be 0 (the default) or at least 100ms, got %v", dw))
	case st.MaxAge > 0 && dw > st.MaxAge:
		problems = append(problems, fmt.Sprintf("clustering.leafServer.streams.duplicateWindow (%v) must not be longer than maxAge (%v)", dw, st.MaxAge))
	}
	problems = append(problems, c.Auth.problems()...)
	if c.Logging.Format != "" && c.Logging.Format != "json" && c.Logging.Format != "console" {
		problems = append(problems, "logging.format must be json or console")
	}
	if len(problems) > 0 {
		return errors.New("invalid configuration: " + strings.Join(problems, "; "))
	}
	return nil
}

// appUserProblems checks the app users (services and the operator) against
// each other and against the cluster secret, which must never be a client's.
func (c Config) appUserProblems() []string {
	var problems []string
	cl := c.Clustering
	users := append([]LeafUser{}, cl.LeafServer.Users...)
	keys := make([]string, 0, len(users)+1)
	for i := range users {
		keys = append(keys, fmt.Sprintf("clustering.leafServer.users[%d]", i))
	}
	if cl.LeafServer.Operator.User == "" {
		problems = append(problems, "clustering.leafServer.operator.user is required")
	} else {
		users = append(users, cl.LeafServer.Operator)
		keys = append(keys, "clustering.leafServer.operator")
	}
	seen := map[string]string{}
	for i, u := range users {
		k := keys[i]
		switch {
		case u.User == "":
			problems = append(problems, k+".user is required")
			continue
		case u.User == cl.User:
			problems = append(problems, fmt.Sprintf("%s.user %q is the cluster user (clustering.user): the cluster secret authenticates node links only; give clients users of their own", k, u.User))
		case strings.HasPrefix(u.User, "_clusterd"):
			problems = append(problems, fmt.Sprintf("%s.user %q: names starting with _clusterd are clusterd's own", k, u.User))
		case strings.ContainsAny(u.User, " \t\r\n"):
			problems = append(problems, fmt.Sprintf("%s.user %q must not contain whitespace", k, u.User))
		}
		if other, dup := seen[u.User]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s are both user %q", other, k, u.User))
		}
		seen[u.User] = k
		if u.Password == "" && k != "clustering.leafServer.operator" {
			problems = append(problems, k+".password is required")
		}
		if u.Password != "" && u.Password != Redacted && u.Password == cl.Password {
			problems = append(problems, k+".password is the cluster password (clustering.password): the cluster secret is never a client's")
		}
	}
	return problems
}
