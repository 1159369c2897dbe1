package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/clusterd/clusterd/auth"
	"gopkg.in/yaml.v3"
)

// Redacted is what secrets read as in Config.Redacted.
const Redacted = "<redacted>"

// Redacted returns a copy of c with its secrets (the cluster password, the
// leaf users', the operator's and the first admin's passwords) replaced by Redacted; empty ones stay empty, which
// tells a reader that a password will be generated (cluster) or is missing.
func (c Config) Redacted() Config {
	if c.Clustering.Password != "" {
		c.Clustering.Password = Redacted
	}
	users := slices.Clone(c.Clustering.LeafServer.Users)
	for i := range users {
		if users[i].Password != "" {
			users[i].Password = Redacted
		}
	}
	c.Clustering.LeafServer.Users = users
	if c.Auth.AdminPassword != "" {
		c.Auth.AdminPassword = Redacted
	}
	if c.Clustering.LeafServer.Operator.Password != "" {
		c.Clustering.LeafServer.Operator.Password = Redacted
	}
	return c
}

// YAML renders c in the config file's shape (loadable by Load).
func (c Config) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Check is Validate plus what a node would only find out when starting:
// trusted issuers that are not Ed25519 public keys, TLS files that do not
// load. It reads files but changes nothing.
func (c Config) Check() error {
	var problems []string
	if err := c.Validate(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "invalid configuration: "))
	}
	for i, id := range c.Auth.TrustedIssuers {
		if _, err := auth.ParseIssuerID(id); err != nil {
			problems = append(problems, fmt.Sprintf("auth.trustedIssuers[%d]: %v", i, err))
		}
	}
	if c.Clustering.TLS.Certificate != "" && c.Clustering.TLS.PrivateKey != "" {
		if _, _, err := loadTLS(c.Clustering.TLS); err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, c.checkStartInputs()...)
	problems = append(problems, c.checkOperationsTLS()...)
	if len(problems) > 0 {
		return errors.New("invalid configuration: " + strings.Join(problems, "; "))
	}
	return nil
}

// UnknownEnv returns the names of variables in env (os.Environ() form) that
// look like configuration overrides, named like a key path under one of the
// top-level keys, but match no key, so Load ignores them (e.g.
// CLUSTERING_NODE_NAME for CLUSTERING_NODENAME). Sorted.
func UnknownEnv(env []string) []string {
	keys := envKeys()
	tops := map[string]bool{}
	for k := range keys {
		top, _, _ := strings.Cut(k, "_")
		tops[top] = true
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(k)
		if _, ok := keys[up]; ok {
			continue
		}
		if top, _, ok := strings.Cut(up, "_"); ok && tops[top] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
