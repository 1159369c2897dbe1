package node

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterd/clusterd/topology"
	"go.uber.org/zap/zapcore"
)

// issuerKeyPath is the issuer key file the node signs with.
func (c Config) issuerKeyPath() string {
	if c.Auth.IssuerKeyFile != "" {
		return c.Auth.IssuerKeyFile
	}
	return filepath.Join(c.RootPath, "issuer.key")
}

// natsHost is the one host every NATS listener of the node binds.
func (c Config) natsHost() string {
	if h := c.Clustering.HubServer.Cluster.Network.Host; h != "" {
		return h
	}
	return c.Clustering.HubServer.Network.Host
}

// checkStartInputs finds what the node would refuse only once starting:
// a log level its logger rejects, an issuer key file it cannot read, and
// listener hosts it would silently not use.
func (c Config) checkStartInputs() []string {
	var problems []string
	if c.Logging.Level != "" {
		var l zapcore.Level
		if err := l.Set(c.Logging.Level); err != nil {
			problems = append(problems, fmt.Sprintf("logging.level must be debug, info, warn or error, got %q", c.Logging.Level))
		}
	}
	if err := checkIssuerKeyFile(c.issuerKeyPath()); err != nil {
		key := "auth.issuerKeyFile"
		if c.Auth.IssuerKeyFile == "" {
			key = "the issuer key (rootPath/issuer.key)"
		}
		problems = append(problems, fmt.Sprintf("%s: %v", key, err))
	}
	host := c.natsHost()
	for _, h := range []struct{ key, host string }{
		{"clustering.leafServer.network.host", c.Clustering.LeafServer.Network.Host},
		{"clustering.hubServer.leafNodes.network.host", c.Clustering.HubServer.LeafNodes.Network.Host},
	} {
		if h.host != "" && h.host != host {
			problems = append(problems, fmt.Sprintf("%s is %s, but every NATS listener of a node binds one host, %s (clustering.hubServer.network.host, or clustering.hubServer.cluster.network.host when set): set it there, and leave %s out",
				h.key, h.host, host, h.key))
		}
	}
	return problems
}

// checkIssuerKeyFile reads an existing issuer key file the way the node
// will; a missing one is fine (the node generates it).
func checkIssuerKeyFile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	const want = `want a PEM "PRIVATE KEY" block holding an Ed25519 key, as openssl genpkey -algorithm ed25519 writes`
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("%s is not PEM (%s)", path, want)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %v (%s)", path, err, want)
	}
	if _, ok := k.(ed25519.PrivateKey); !ok {
		return fmt.Errorf("%s holds a %T key, not Ed25519 (%s)", path, k, want)
	}
	return nil
}

// Effective returns c with the values the node fills in at start shown in
// place of empty ones: the generated cluster and operator passwords' files, the issuer
// key file, the one NATS host, the duplicate window, the request timeout,
// the log level and format. Meant for display (config check): apply it
// after Redacted.
func (c Config) Effective() Config {
	if c.Clustering.Password == "" {
		pw := filepath.Join(c.RootPath, "cluster-password")
		if _, err := os.Stat(pw); err == nil {
			c.Clustering.Password = "<redacted, generated and kept in " + pw + ">"
		} else {
			c.Clustering.Password = "<generated on first start into " + pw + ">"
		}
	}
	if c.Clustering.LeafServer.Operator.Password == "" {
		pw := filepath.Join(c.RootPath, "operator-password")
		if _, err := os.Stat(pw); err == nil {
			c.Clustering.LeafServer.Operator.Password = "<redacted, generated and kept in " + pw + ">"
		} else {
			c.Clustering.LeafServer.Operator.Password = "<generated on first start into " + pw + ">"
		}
	}
	if c.Auth.IssuerKeyFile == "" {
		c.Auth.IssuerKeyFile = c.issuerKeyPath()
	}
	c.Auth = c.Auth.effective()
	host := c.natsHost()
	c.Clustering.HubServer.Cluster.Network.Host = host
	c.Clustering.HubServer.Network.Host = host
	c.Clustering.HubServer.LeafNodes.Network.Host = host
	c.Clustering.LeafServer.Network.Host = host
	st := c.Clustering.LeafServer.Streams
	c.Clustering.LeafServer.Streams.DuplicateWindow = topology.Limits{MaxAge: st.MaxAge, DuplicateWindow: st.DuplicateWindow}.Duplicates()
	if c.Clustering.RequestTimeout == 0 {
		c.Clustering.RequestTimeout = 2 * time.Second
	}
	if c.Logging.Level == "" {
		c.Logging.Level = "info"
	}
	if c.Logging.Format == "" {
		c.Logging.Format = "json"
	}
	return c
}
