// Package node assembles one clusterd node from its configuration: state
// store, embedded servers, operation intake (NATS and HTTP), and the
// long-running components (membership, the topology workers), each a
// Run(ctx) error under one errgroup that Close waits for; and takes it down
// again in order. cmd/clusterd, the tests and the benchmarks all start nodes
// through it.
package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/handlers"
	"github.com/clusterd/clusterd/membership"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Version is clusterd's version, shown by `nats micro info`.
var Version = "0.1.0"

// Node is one running clusterd node.
type Node struct {
	Config  Config
	Store   *storage.Store
	Servers *topology.Servers
	Metrics *events.Metrics
	Bus     *events.Bus
	Ops     *handlers.Ops
	// Auth authenticates requests (tokens, users); transports that verify
	// a user another way (client certificates) look users up through it.
	Auth    *auth.Authenticator
	Members *membership.Protocol
	users   *handlers.UserOps

	log       *zap.Logger
	issuerKey ed25519.PrivateKey
	password  string // the cluster secret's
	// operatorPassword is the operator user's (configured or generated).
	operatorPassword string
	proxies          []*topology.ConsumerProxy
	proxyConns       []*nats.Conn
	nc               *nats.Conn
	unservedNC       *nats.Conn // the catch-all for unknown operations
	dispatcher       *events.Dispatcher
	ingress          *events.NATSIngress
	api              operationsAPI
	routeLoop        *topology.Loop
	replLoop         *topology.Loop
	Repl             *topology.ReplicationReconciler
	Loss             *topology.TxnLoss // lost transactions, see node/txnloss.go
	peerSrv          *events.PeerServer
	started          time.Time
	first            firstStart  // what a failed start undoes, what a good one prints
	up               atomic.Bool // Start completed: logged `node started`

	cancel    context.CancelFunc // ends the components' context
	group     *errgroup.Group    // the components, see runComponents
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Options are the process-level inputs of Start.
type Options struct {
	Log *zap.Logger
	// BeginAnew lets a node whose state store is damaged, or empty while the
	// node has history, start with an empty one (BeginAnewFlag).
	BeginAnew bool
	// Stdout receives the one-time `nats context save` line when the
	// operator's password is generated. Nil discards it.
	Stdout io.Writer
}

// Start brings a node up. On error everything started so far is stopped.
// ctx bounds the start-up: when it ends first, Start undoes what it did and
// returns ErrStartInterrupted; once started, the node runs until Close.
func Start(ctx context.Context, cfg Config, o Options) (_ *Node, err error) {
	// The same checks as `clusterd config check`.
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := cfg.checkPortsFree(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("node", cfg.Clustering.NodeName))
	// n is not the named result: a failing return sets that to nil, while n
	// is still what the cleanup closes and what the workers use.
	n := &Node{Config: cfg, log: log, started: time.Now(), Bus: events.NewBus(), Metrics: events.NewMetrics(Version)}
	defer func() {
		if err != nil {
			n.Close()
			n.first.undo(cfg.RootPath)
		}
	}()
	if _, err := os.Stat(cfg.RootPath); errors.Is(err, os.ErrNotExist) {
		n.first.rootMade = true
	}
	if err := os.MkdirAll(cfg.RootPath, 0o700); err != nil {
		return nil, fmt.Errorf("create rootPath: %w", err)
	}
	if created, err := cfg.claimRootPath(); err != nil {
		return nil, err
	} else if created {
		n.first.made = append(n.first.made, filepath.Join(cfg.RootPath, nodeNameFile))
	}
	if err := n.loadSecrets(); err != nil {
		return nil, err
	}
	verifier, err := n.verifier()
	if err != nil {
		return nil, err
	}
	if n.Store, err = n.openStore(o.BeginAnew); err != nil {
		return nil, err
	}
	// The store announces what its commits changed; nobody that writes
	// desired state has to remember to wake the workers.
	n.Store.OnChange(n.Bus.Announce)
	n.startAuth(verifier)
	if err := n.seedRoutes(); err != nil {
		return nil, err
	}
	n.reportBadNames()
	serverTLS, clientTLS, err := loadTLS(cfg.Clustering.TLS)
	if err != nil {
		return nil, err
	}
	leafUsers := []topology.User{{Name: cfg.Clustering.LeafServer.Operator.User, Password: n.operatorPassword}}
	for _, u := range cfg.Clustering.LeafServer.Users {
		leafUsers = append(leafUsers, topology.User{Name: u.User, Password: u.Password})
	}
	clusterHost := cfg.Clustering.HubServer.Cluster.Network.Host
	if clusterHost == "" {
		clusterHost = cfg.Clustering.HubServer.Network.Host
	}
	n.Servers, err = topology.StartServers(topology.ServerOptions{
		NodeName:    cfg.Clustering.NodeName,
		Host:        clusterHost,
		HubPort:     cfg.Clustering.HubServer.Network.Port,
		HubLeafPort: cfg.Clustering.HubServer.LeafNodes.Network.Port,
		ClusterPort: cfg.Clustering.HubServer.Cluster.Network.Port,
		ClusterName: cfg.Clustering.HubServer.Cluster.Name,
		LeafPort:    cfg.Clustering.LeafServer.Network.Port,
		User:        cfg.Clustering.User,
		Password:    n.password,
		LeafUsers:   leafUsers,
		StoreDir:    filepath.Join(cfg.RootPath, "jetstream"),
		SyncAlways:  cfg.Clustering.LeafServer.SyncAlways,
		ServerTLS:   serverTLS,
		ClientTLS:   clientTLS,
		Log:         log,
		Operations:  handlers.OperationNames(),
	})
	if err != nil {
		return nil, err
	}
	n.registerLinkFaultMetrics()
	if n.nc, err = n.Servers.InternalConn("clusterd-" + cfg.Clustering.NodeName); err != nil {
		return nil, fmt.Errorf("connect to leaf server: %w", err)
	}
	// Both connections are made before the route worker runs: nats-server
	// re-checks users while a route change reloads it, and may refuse a
	// connection made in that moment.
	if n.unservedNC, err = n.Servers.UnservedOpsConn("clusterd-" + cfg.Clustering.NodeName + "-unserved-ops"); err != nil {
		return nil, fmt.Errorf("connect to leaf server: %w", err)
	}
	js, err := jetstream.New(n.nc)
	if err != nil {
		return nil, err
	}
	if err := n.startConsumerProxies(); err != nil {
		return nil, err
	}
	streams := cfg.Clustering.LeafServer.Streams
	txn := &topology.TxnStream{JS: js, NC: n.nc, Node: cfg.Clustering.NodeName,
		Limits: topology.Limits{MaxAge: streams.MaxAge, MaxBytes: streams.MaxBytes, MaxMsgs: streams.MaxMsgs, DuplicateWindow: streams.DuplicateWindow}}
	timeout := cfg.Clustering.RequestTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	peers := events.NewPeerClient(n.nc, cfg.Clustering.NodeName, n.password, timeout)
	n.Members = membership.New(membership.Config{
		Self:         cfg.Clustering.NodeName,
		Enabled:      cfg.Clustering.Enabled,
		Store:        n.Store,
		Peers:        peers,
		RetryFor:     timeout,
		NoticeMinAge: cfg.Clustering.RequestTimeout + time.Second,
		Log:          log.Named("membership"),
	})
	n.Repl = &topology.ReplicationReconciler{Store: n.Store, Stream: txn, Log: log, Metrics: n.Metrics}
	loss := n.newTxnLoss(txn)
	n.Ops = handlers.New(handlers.Ops{
		NodeName:          cfg.Clustering.NodeName,
		ClusteringEnabled: cfg.Clustering.Enabled,
		Store:             n.Store,
		Bus:               n.Bus,
		Peers:             peers,
		Members:           n.Members,
		RequestTimeout:    timeout,
		Txn:               txn,
		Servers:           n.Servers,
		Repl:              n.Repl,
		Loss:              loss,
		Mesh:              peers,
		Started:           n.started,
		Version:           Version,
		HTTPPort:          n.operationsAPIPort,
		Log:               log.Named("ops"),
		Users:             n.users,
	})
	if n.dispatcher, err = events.NewDispatcher(n.Ops.Operations(), n.Auth, n.Metrics, log.Named("ops")); err != nil {
		return nil, err
	}
	if err := n.dispatcher.Run(context.Background()); err != nil {
		return nil, fmt.Errorf("start router: %w", err)
	}

	// The transaction stream exists before the route worker first reloads
	// the servers: nats-server 2.15 reads its options without a lock while
	// it creates a stream, a data race with a reload (seen in a full race
	// run when configured routes were applied at first start). A failure
	// here is the replication worker's to retry and report.
	ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
	if _, err := txn.Ensure(ectx); err != nil {
		log.Warn("transaction stream not ready yet", zap.Error(err))
	} else if err := topology.GrantOwned(ectx, js, n.Servers.Grants(), log); err != nil {
		log.Warn("app consumers not granted back", zap.Error(err))
	}
	ecancel()
	if err := interrupted(ctx); err != nil {
		return nil, err
	}
	n.startTxnLoss(loss)

	n.routeLoop = &topology.Loop{
		Name:      "routes",
		Reconcile: (&topology.RouteReconciler{Store: n.Store, Servers: n.Servers}).Reconcile,
		Trigger:   n.Bus.Subscribe(events.RoutesChanged),
		Resync:    2 * time.Second,
		Log:       log,
		Metrics:   n.Metrics,
		Backlog:   n.routeBacklog,
	}
	n.replLoop = &topology.Loop{
		Name:      "replication",
		Reconcile: n.Repl.Reconcile,
		Trigger:   n.Bus.Subscribe(events.NodesChanged),
		Resync:    2 * time.Second,
		Log:       log,
		Metrics:   n.Metrics,
		Backlog:   n.Repl.Backlog,
		Requeue:   n.Repl.Requeue,
		// Under a burst of changes (a client flipping subscriptions in a
		// loop) passes are busy at most a quarter of the time. A table
		// joining a lane is a filter update of a few milliseconds, so
		// passes may come close together (they were 100 ms apart when
		// each change added a source and a backward scan of the stream).
		// A change after a quiet spell is taken at once.
		MinInterval: 5 * time.Millisecond,
		MaxDuty:     0.25,
	}
	// Notices are due only RequestTimeout+1s after they were written (the
	// operation that wrote one settles it before that), so the worker is
	// not woken by changes: it looks every second (a scan of a few keys)
	// and when a peer announces a restart.
	noticeLoop := &topology.Loop{
		Name:       "notices",
		Reconcile:  n.Members.ReconcileNotices,
		Resync:     time.Second,
		MaxBackoff: 3 * time.Second,
		Log:        log,
		Metrics:    n.Metrics,
		Backlog:    n.Members.NoticeBacklog,
	}
	n.runComponents(ctx,
		component{"membership", n.Members.Run},
		component{"txn_loss_watch", untilDone(n.Loss.Watch)},
		component{"txn_loss_counts", untilDone(n.Loss.KeepCounts)},
		component{"routes", n.routeLoop.Run},
		component{"replication", n.replLoop.Run},
		component{"notices", noticeLoop.Run},
		component{"restart_announcement", func(ctx context.Context) error { return n.announceRestart(ctx, peers) }},
	)
	if n.peerSrv, err = events.StartPeerServer(n.nc, cfg.Clustering.NodeName, n.password, n.Ops.PeerHandlers(), log.Named("peer")); err != nil {
		return nil, err
	}
	// Peers' sources from this node lost their consumers if we restarted:
	// tell them once our stream is back, so they recreate them at once.
	var bootsMu sync.Mutex
	boots := map[string]string{} // peer -> boot id last acted on
	if _, err := events.ListenAnnouncements(n.nc, cfg.Clustering.NodeName, n.password, "restarted", func(from string, boot []byte) {
		bootsMu.Lock()
		seen := boots[from] == string(boot)
		boots[from] = string(boot)
		bootsMu.Unlock()
		if !seen {
			n.Repl.PeerRestarted(from)
			n.replLoop.Kick()
			noticeLoop.Kick()
		}
	}, log); err != nil {
		return nil, err
	}
	if n.ingress, err = events.StartNATSIngress(n.nc, n.unservedNC, n.dispatcher, cfg.Clustering.NodeName, Version); err != nil {
		return nil, err
	}
	for i, acc := range n.Servers.AppAccounts() {
		if err := n.ingress.ServeLocal(n.proxyConns[2*i], n.proxyConns[2*i+1]); err != nil {
			return nil, fmt.Errorf("serve operations in %s: %w", acc, err)
		}
	}
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	p := n.Servers.Ports()
	log.Info("node started",
		zap.String("host", clusterHost),
		zap.Int("operations_api_port", n.HTTPPort()),
		zap.Int("operations_api_secure_port", n.HTTPSPort()),
		zap.Int("hub_port", p.HubClient),
		zap.Int("hub_leafnodes_port", p.HubLeaf),
		zap.Int("clustering_port", p.Cluster),
		zap.Int("leaf_port", p.LeafClient),
		zap.String("root_path", cfg.RootPath),
		zap.Bool("clustering_enabled", cfg.Clustering.Enabled),
		zap.String("issuer", auth.IssuerID(n.issuerKey.Public().(ed25519.PublicKey))))
	if err := n.createAdmin(); err != nil {
		return nil, err
	}
	if err := interrupted(ctx); err != nil {
		return nil, err
	}
	n.first.print(o.Stdout, p)
	n.markStarted()
	n.up.Store(true)
	return n, nil
}

// startConsumerProxies connects clusterd's two connections inside every app
// account (n.proxyConns: the serving one, then the unserved-operations one,
// per account) and serves the account's consumer requests on the first
// (topology.ConsumerProxy). Connected before the route worker runs, like the
// internal connections.
func (n *Node) startConsumerProxies() error {
	for _, acc := range n.Servers.AppAccounts() {
		nc, err := n.Servers.ProxyConn(acc, "clusterd-"+n.Name())
		if err != nil {
			return fmt.Errorf("connect to app account %s: %w", acc, err)
		}
		n.proxyConns = append(n.proxyConns, nc)
		un, err := n.Servers.AppUnservedConn(acc, "clusterd-"+n.Name()+"-unserved-ops")
		if err != nil {
			return fmt.Errorf("connect to app account %s: %w", acc, err)
		}
		n.proxyConns = append(n.proxyConns, un)
		p, err := topology.StartConsumerProxy(nc, n.nc, acc, n.Servers.Grants(), 5*time.Second, n.log.Named("consumers"))
		if err != nil {
			return fmt.Errorf("start the consumer proxy of %s: %w", acc, err)
		}
		n.proxies = append(n.proxies, p)
	}
	return nil
}

// loadSecrets reads or creates the cluster password, the operator's password
// and the issuer key. The cluster password is never printed: only nodes hold
// it. The operator's is printed once, when generated (Start).
func (n *Node) loadSecrets() error {
	cfg := n.Config
	var err error
	var created bool
	if n.password = cfg.Clustering.Password; n.password == "" {
		path := filepath.Join(cfg.RootPath, "cluster-password")
		if n.password, created, err = loadOrCreateSecret(path); err != nil {
			return fmt.Errorf("cluster password: %w", err)
		}
		if created {
			n.first.made = append(n.first.made, path)
		}
	}
	if n.operatorPassword = cfg.Clustering.LeafServer.Operator.Password; n.operatorPassword == "" {
		path := filepath.Join(cfg.RootPath, "operator-password")
		if n.operatorPassword, created, err = loadOrCreateSecret(path); err != nil {
			return fmt.Errorf("operator password: %w", err)
		}
		if created {
			n.first.made = append(n.first.made, path)
			// Printed once the node has started, with the port it bound.
			n.first.hints = append(n.first.hints, func(w io.Writer, p topology.Ports) {
				fmt.Fprintf(w, "Generated the operator's NATS password (kept in %s). Save a nats CLI context for this node with:\n"+
					"  nats context save %s --server nats://127.0.0.1:%d --user %s --password %s --select\n",
					path, cfg.Clustering.NodeName, p.LeafClient, cfg.Clustering.LeafServer.Operator.User, n.operatorPassword)
			})
		}
	}
	if n.operatorPassword == n.password {
		return errors.New("the operator's password equals the cluster password: the cluster secret is never a client's; change one")
	}
	for _, u := range cfg.Clustering.LeafServer.Users {
		if u.Password == n.password {
			return fmt.Errorf("clustering.leafServer.users %q has the cluster password: the cluster secret is never a client's", u.User)
		}
	}
	keyFile := cfg.Auth.IssuerKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.RootPath, "issuer.key")
	}
	k, created, err := auth.LoadOrCreateIssuerKey(keyFile)
	if err != nil {
		return err
	}
	if created {
		n.first.made = append(n.first.made, keyFile)
		n.log.Info("generated issuer key", zap.String("file", keyFile), zap.String("issuer", auth.IssuerID(k.Public().(ed25519.PublicKey))))
	}
	n.issuerKey = k
	return nil
}

func (n *Node) verifier() (*auth.Verifier, error) {
	keys := []ed25519.PublicKey{n.issuerKey.Public().(ed25519.PublicKey)}
	for _, id := range n.Config.Auth.TrustedIssuers {
		k, err := auth.ParseIssuerID(id)
		if err != nil {
			return nil, fmt.Errorf("auth.trustedIssuers: %w", err)
		}
		keys = append(keys, k)
	}
	return auth.NewVerifier(n.Config.Auth.Limits(), keys...), nil
}

func (n *Node) seedRoutes() error {
	var r storage.Routes
	for _, x := range n.Config.Clustering.HubServer.Cluster.Network.Routes {
		r.Hub = append(r.Hub, storage.Route{Host: x.Host, Port: x.Port})
	}
	for _, x := range n.Config.Clustering.LeafServer.Network.Routes {
		r.Leaf = append(r.Leaf, storage.Route{Host: x.Host, Port: x.Port})
	}
	seeded, err := n.Store.SeedRoutes(r)
	if err != nil {
		return fmt.Errorf("seed routes: %w", err)
	}
	if seeded && (len(r.Hub) > 0 || len(r.Leaf) > 0) {
		n.log.Info("seeded routes from config", zap.Int("hub", len(r.Hub)), zap.Int("leaf", len(r.Leaf)))
	}
	return nil
}

func loadTLS(t TLS) (server, client *tls.Config, err error) {
	if t.Certificate == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("clustering.tls: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CertificateAuthority != "" {
		pem, err := os.ReadFile(t.CertificateAuthority)
		if err != nil {
			return nil, nil, fmt.Errorf("clustering.tls.certificateAuthority: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, errors.New("clustering.tls.certificateAuthority: no certificates found")
		}
		server.ClientCAs = pool
		server.ClientAuth = tls.VerifyClientCertIfGiven
		// Routes dial with the server's config, so it verifies peers too.
		server.RootCAs = pool
		client.RootCAs = pool
	}
	return server, client, nil
}

// Name is the node name.
func (n *Node) Name() string { return n.Config.Clustering.NodeName }

// Password is the cluster password in force (configured or generated).
func (n *Node) Password() string { return n.password }

// OperatorUser is the operator's NATS user.
func (n *Node) OperatorUser() string { return n.Config.Clustering.LeafServer.Operator.User }

// OperatorPassword is the operator's NATS password in force (configured or
// generated).
func (n *Node) OperatorPassword() string { return n.operatorPassword }

// IssuerKey is the key the node signs tokens with.
func (n *Node) IssuerKey() ed25519.PrivateKey { return n.issuerKey }

// Token mints a token this node trusts.
func (n *Node) Token(user, role string, ttl time.Duration) (string, error) {
	return auth.Mint(n.issuerKey, user, role, ttl)
}

// LeafURL is the nats:// URL of the leaf client port.
func (n *Node) LeafURL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.Servers.Ports().LeafClient)
}

// Ready implements events.Health.
func (n *Node) Ready() (bool, string) {
	if n.closing.Load() {
		return false, "shutting down"
	}
	if !n.up.Load() {
		return false, "starting"
	}
	if reason := n.linkMismatches(); reason != "" {
		return false, reason
	}
	select {
	case <-n.routeLoop.Converged():
	default:
		return false, "routes not converged yet"
	}
	select {
	case <-n.replLoop.Converged():
	default:
		return false, "replication not converged yet"
	}
	return true, n.Loss.Degraded() // ready, though degraded when transactions were lost
}

// routeBacklog counts desired routes the servers are not configured with,
// and configured routes no longer desired.
func (n *Node) routeBacklog() int {
	want, err := n.Store.Routes()
	if err != nil {
		return 0
	}
	hub, leaf, err := n.Servers.ObservedRoutes()
	if err != nil {
		return 0
	}
	return routeDiff(want.Hub, hub) + routeDiff(want.Leaf, leaf)
}

func routeDiff(want, have []storage.Route) int {
	in := func(list []storage.Route, r storage.Route) bool {
		for _, x := range list {
			if x == r {
				return true
			}
		}
		return false
	}
	d := 0
	for _, r := range want {
		if !in(have, r) {
			d++
		}
	}
	for _, r := range have {
		if !in(want, r) {
			d++
		}
	}
	return d
}

// Close stops intake, answers in-flight requests, stops workers, drains the
// internal connection, shuts the servers down and closes the store, in that
// order. Safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		if n.ingress != nil {
			n.ingress.Stop()
		}
		if n.peerSrv != nil {
			n.peerSrv.Stop()
		}
		n.stopHTTP()
		if n.dispatcher != nil {
			if err := n.dispatcher.Close(); err != nil {
				n.log.Warn("router close", zap.Error(err))
			}
		}
		n.stopComponents()
		if n.up.Load() {
			n.saveTxnCounts()
		}
		for _, p := range n.proxies {
			p.Stop()
		}
		for _, nc := range append(n.proxyConns, n.unservedNC, n.nc) {
			if nc == nil {
				continue
			}
			drain(nc, time.Second)
		}
		if n.Servers != nil {
			n.Servers.Shutdown()
		}
		if n.Store != nil {
			n.closeErr = n.Store.Close()
		}
		if n.up.Load() {
			n.log.Info("node stopped") // only a node that started stops
		}
	})
	return n.closeErr
}

// loadOrCreateSecret reads the secret kept in path, or generates one and
// keeps it there (0600); created says which.
func loadOrCreateSecret(path string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
		return "", false, fmt.Errorf("%s is empty: delete it to have a new one generated", path)
	case !errors.Is(err, os.ErrNotExist):
		return "", false, err
	}
	buf := make([]byte, 18)
	_, _ = rand.Read(buf)
	secret = hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save generated secret: %w", err)
	}
	return secret, true, nil
}
