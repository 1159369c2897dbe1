package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clusterd/clusterd/topology"
)

// portKeys lists the node's listeners as config key, env variable, host and
// port, in the order a user reads the config.
func (c Config) portKeys() []struct {
	key, env, host string
	port           int
} {
	natsHost := c.Clustering.HubServer.Cluster.Network.Host
	if natsHost == "" {
		natsHost = c.Clustering.HubServer.Network.Host
	}
	type pk = struct {
		key, env, host string
		port           int
	}
	return []pk{
		{"operationsApi.network.port", "OPERATIONSAPI_NETWORK_PORT", c.OperationsAPI.Network.Host, c.OperationsAPI.Network.Port},
		{"operationsApi.network.securePort", "OPERATIONSAPI_NETWORK_SECUREPORT", c.OperationsAPI.Network.Host, c.OperationsAPI.Network.SecurePort},
		{"clustering.hubServer.network.port", "CLUSTERING_HUBSERVER_NETWORK_PORT", natsHost, c.Clustering.HubServer.Network.Port},
		{"clustering.hubServer.leafNodes.network.port", "CLUSTERING_HUBSERVER_LEAFNODES_NETWORK_PORT", natsHost, c.Clustering.HubServer.LeafNodes.Network.Port},
		{"clustering.hubServer.cluster.network.port", "CLUSTERING_HUBSERVER_CLUSTER_NETWORK_PORT", natsHost, c.Clustering.HubServer.Cluster.Network.Port},
		{"clustering.leafServer.network.port", "CLUSTERING_LEAFSERVER_NETWORK_PORT", natsHost, c.Clustering.LeafServer.Network.Port},
	}
}

// checkPortsFree refuses, at once and before anything is written, ports
// another process holds: nats-server would otherwise retry its listener for
// seconds, log misleading errors, and leave a half-started node. Port 0
// (pick a free one) always passes. It names every port in use.
func (c Config) checkPortsFree() error {
	var busy []string
	for _, p := range c.portKeys() {
		if p.port == 0 || p.port == Off {
			continue // picked at start, or a listener that is off
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(p.host, strconv.Itoa(p.port)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s %d on %s is in use", p.key, p.port, displayHost(p.host)))
			continue
		}
		ln.Close()
	}
	if len(busy) == 0 {
		return nil
	}
	return fmt.Errorf("cannot start: %s. Another clusterd node or program holds it: stop that, or set the key (or its environment variable, e.g. CLUSTERING_LEAFSERVER_NETWORK_PORT) to a free port; 0 picks one",
		strings.Join(busy, "; "))
}

func displayHost(h string) string {
	if h == "" {
		return "all interfaces"
	}
	return h
}

// nodeNameFile ties a rootPath to the node whose data it holds: the node
// name is its JetStream domain and the origin token of its transaction
// subjects, so starting another name on the same data would silently
// orphan both.
const nodeNameFile = "node-name"

// claimRootPath checks that rootPath holds this node's data (or none), and
// records the name on a first start. created reports whether the file was
// written now (a failed first start removes it again).
func (c Config) claimRootPath() (created bool, err error) {
	path := filepath.Join(c.RootPath, nodeNameFile)
	name := c.Clustering.NodeName
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if had := strings.TrimSpace(string(b)); had != name {
			return false, fmt.Errorf("cannot start: rootPath %s holds the data of node '%s' (its JetStream domain and transaction subjects carry that name), but clustering.nodeName is '%s'. "+
				"Start it as '%s' (clustering.nodeName, or CLUSTERING_NODENAME=%s; the default is the hostname, so a renamed host needs it set), or give '%s' its own rootPath",
				c.RootPath, had, name, had, had, name)
		}
		return false, nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
			return false, fmt.Errorf("record the node name in rootPath: %w", err)
		}
		return true, nil
	default:
		return false, fmt.Errorf("read %s: %w", path, err)
	}
}

// firstStart collects what a node's first start writes and prints, so that
// nothing is left behind, or printed as if the start succeeded, when it
// fails.
type firstStart struct {
	// made are files this start created (generated secrets, the node-name
	// record); removed again if the start fails.
	made []string
	// rootMade: the rootPath did not exist before this start.
	rootMade bool
	// hints are printed after `node started`, with the ports really bound.
	hints []func(w io.Writer, p topology.Ports)
}

// undo removes what a failed start created.
func (f *firstStart) undo(rootPath string) {
	for _, p := range f.made {
		_ = os.Remove(p)
	}
	if f.rootMade {
		_ = os.RemoveAll(rootPath)
	}
}

// print writes the first-start hints to w (nil discards them).
func (f *firstStart) print(w io.Writer, p topology.Ports) {
	if w == nil {
		return
	}
	for _, h := range f.hints {
		h(w, p)
	}
}
