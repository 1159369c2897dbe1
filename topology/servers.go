package topology

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// User is an app user of the leaf client port: a service, or the operator.
// Each is alone in an account of its own (AppAccount).
type User struct {
	Name     string
	Password string
}

// ServerOptions configure a node's embedded servers. Port 0 picks a free port.
type ServerOptions struct {
	NodeName    string
	Host        string
	HubPort     int // hub client port
	HubLeafPort int // hub leafnode listener
	ClusterPort int // hub cluster listener (the clustering port)
	ClusterName string
	LeafPort    int // leaf client port
	// User and Password are the cluster secret: they authenticate hub routes
	// and leafnode links only, never a client connection.
	User     string
	Password string
	// LeafUsers are the app users of the leaf client port.
	LeafUsers  []User
	StoreDir   string // JetStream storage
	SyncAlways bool   // fsync every JetStream write before acknowledging it
	// ServerTLS, when set, is required on every listener; ClientTLS is used
	// to dial routes and leafnode remotes.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Log       *zap.Logger
	// Operations are the names clusterd serves on ops.cluster.<name>: the
	// connection UnservedOpsConn makes is not delivered requests for them.
	Operations []string
}

// Subjects only clusterd's own processes may use: operation intake and
// inter-node calls. Clients are denied them so nobody can impersonate a
// responder or read other callers' requests.
const (
	InternalPrefix = "_clusterd"
	opsLocal       = "ops.cluster.>"
	opsPrefix      = "ops.cluster."
)

// Servers is a node's running hub and leaf servers.
type Servers struct {
	Hub  *server.Server
	Leaf *server.Server
	// Faults are the link problems read from the servers' logs.
	Faults *LinkFaults

	opts ServerOptions
	log  *zap.Logger

	// internal user: clusterd's own connections; random per process.
	internalUser, internalPass string
	// unserved user: the connection that answers unknown operations.
	unservedUser, unservedPass string
	// proxies: per app account, the users of clusterd's two connections
	// inside it: [0] serves the operations, $SRV and consumer requests
	// (jsproxy.go), [1] the unknown operations (unservedPermissions).
	proxies map[string][2]User
	// warnedClusterUser: a client trying the cluster secret's user on a
	// client port is told what to use instead (once).
	warnedClusterUser atomic.Bool
	grants            *ConsumerGrants

	mu       sync.Mutex // serializes reloads; guards the option snapshots
	hubOpts  *server.Options
	leafOpts *server.Options

	// varzMu serializes Varz calls: nats-server's Varz writes
	// s.varzUpdateRouteURLs under a read lock, so two concurrent calls on a
	// server after a route reload race (go test -race reports it).
	varzMu sync.Mutex
}

// Varz returns srv's Varz (srv is s.Hub or s.Leaf). Use it instead of
// calling srv.Varz directly, which is not safe for concurrent use.
func (s *Servers) Varz(srv *server.Server) (*server.Varz, error) {
	s.varzMu.Lock()
	defer s.varzMu.Unlock()
	return srv.Varz(nil)
}

func port(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// unservedPermissions let a connection take requests on ops.cluster.* except
// for the served operations. A wildcard subscription that overlaps a
// subscribe deny is allowed, and the server then drops the denied subjects
// at delivery: served requests reach only their micro endpoint instead of
// being delivered, parsed and woken up for twice on clusterd's side.
func unservedPermissions(served []string) *server.Permissions {
	deny := make([]string, 0, len(served))
	for _, op := range served {
		deny = append(deny, opsPrefix+op)
	}
	return &server.Permissions{
		// Replies go to whatever inbox the requester chose.
		Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{InternalPrefix + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{opsPrefix + "*"}, Deny: deny},
	}
}

// StartServers starts hub then leaf and waits until both accept clients and
// the leaf is connected to its hub.
func StartServers(o ServerOptions) (*Servers, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	s := &Servers{opts: o, log: o.Log, internalUser: "_clusterd_internal", internalPass: randomSecret(),
		unservedUser: "_clusterd_unserved_ops", unservedPass: randomSecret(), Faults: NewLinkFaults(o.NodeName, o.Log)}

	// The hub has clusterd's account only: its client port takes clusterd's
	// internal user, its leafnode listener and routes the cluster secret,
	// and every link lands in ClusterdAccount.
	hubAcc := server.NewAccount(ClusterdAccount)
	hubOpts := &server.Options{
		ServerName: o.NodeName + "-hub",
		Host:       o.Host,
		Port:       port(o.HubPort),
		NoSigs:     true,
		MaxPayload: 8 << 20,
		Accounts:   []*server.Account{hubAcc},
		Users: []*server.User{
			{Username: s.internalUser, Password: s.internalPass, Account: hubAcc},
		},
		Cluster: server.ClusterOpts{
			Name:     o.ClusterName,
			Host:     o.Host,
			Port:     port(o.ClusterPort),
			Username: o.User,
			Password: o.Password,
			// Node-local operations never cross the mesh.
			Permissions: &server.RoutePermissions{
				Import: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{opsLocal}},
				Export: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{opsLocal}},
			},
			ConnectBackoff: true,
		},
		LeafNode: server.LeafNodeOpts{
			Host:     o.Host,
			Port:     port(o.HubLeafPort),
			Username: o.User,
			Password: o.Password,
			Account:  ClusterdAccount,
			// A hub that advertises its leafnode URL (to its leafnodes, and
			// through routes to every hub's leafnodes) makes leaf servers
			// reconnect elsewhere than configured: after its link to its own
			// hub drops once, a node's leaf server re-attached to another
			// node's hub (first in its learned list), with none of the deny
			// rules of a leaf route; a leaf route through a proxy or load
			// balancer was replaced by the hub's own address. Leafnode
			// remotes go exactly where clusterd points them.
			NoAdvertise: true,
		},
		DisableJetStreamBanner: true,
		// Every failed attempt to reach a route is logged, so that
		// LinkFaults sees a route to nothing (the default says it once an hour).
		ConnectErrorReports:   1,
		ReconnectErrorReports: 1,
	}
	if o.ServerTLS != nil {
		hubOpts.TLSConfig = o.ServerTLS
		hubOpts.TLS, hubOpts.TLSVerify = true, o.ServerTLS.ClientAuth == tls.RequireAndVerifyClientCert
		hubOpts.TLSTimeout = 2
		hubOpts.Cluster.TLSConfig = o.ServerTLS.Clone()
		hubOpts.Cluster.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
		hubOpts.Cluster.TLSTimeout = 2
		hubOpts.LeafNode.TLSConfig = o.ServerTLS
		hubOpts.LeafNode.TLSTimeout = 2
	}
	hub, err := server.NewServer(hubOpts)
	if err != nil {
		return nil, fmt.Errorf("hub server: %w", err)
	}
	hub.SetLoggerV2(natsLogger{l: o.Log.Named("hub"), faults: s.Faults, server: "hub", onAuthError: s.authError}, false, false, false)
	hub.Start()
	if !hub.ReadyForConnections(10 * time.Second) {
		hub.Shutdown()
		return nil, errors.New("hub server did not become ready (are its ports free?)")
	}
	s.Hub, s.hubOpts = hub, hubOpts

	appAccounts := make([]string, 0, len(o.LeafUsers))
	seen := map[string]bool{}
	for _, u := range o.LeafUsers {
		a := AppAccount(u.Name)
		if seen[a] {
			hub.Shutdown()
			return nil, fmt.Errorf("app users %q and another user share the account name %s: rename one", u.Name, a)
		}
		seen[a] = true
		appAccounts = append(appAccounts, a)
	}
	accounts, byName, err := leafAccounts(o.NodeName, appAccounts)
	if err != nil {
		hub.Shutdown()
		return nil, err
	}
	if moved, err := moveGlobalStore(o.StoreDir); err != nil {
		hub.Shutdown()
		return nil, err
	} else if moved {
		o.Log.Info("moved the JetStream data stored before accounts to clusterd's account", zap.String("account", ClusterdAccount))
	}
	own := byName[ClusterdAccount]
	users := []*server.User{
		{Username: s.internalUser, Password: s.internalPass, Account: own},
		{Username: s.unservedUser, Password: s.unservedPass, Account: own, Permissions: unservedPermissions(o.Operations)},
	}
	s.proxies = map[string][2]User{}
	for i, u := range o.LeafUsers {
		acc := byName[appAccounts[i]]
		users = append(users, &server.User{Username: u.Name, Password: u.Password, Account: acc})
		p := [2]User{{Name: fmt.Sprintf("_clusterd_app_%d", i), Password: randomSecret()},
			{Name: fmt.Sprintf("_clusterd_app_%d_unserved", i), Password: randomSecret()}}
		s.proxies[appAccounts[i]] = p
		users = append(users, &server.User{Username: p[0].Name, Password: p[0].Password, Account: acc},
			&server.User{Username: p[1].Name, Password: p[1].Password, Account: acc, Permissions: unservedPermissions(o.Operations)})
	}
	leafOpts := &server.Options{
		ServerName:             o.NodeName,
		Host:                   o.Host,
		Port:                   port(o.LeafPort),
		NoSigs:                 true,
		MaxPayload:             8 << 20,
		Accounts:               accounts,
		Users:                  users,
		JetStream:              true,
		JetStreamDomain:        o.NodeName,
		StoreDir:               filepath.Join(o.StoreDir),
		SyncAlways:             o.SyncAlways,
		DisableJetStreamBanner: true,
		LeafNode:               server.LeafNodeOpts{ReconnectInterval: 250 * time.Millisecond},
		ConnectErrorReports:    1,
		ReconnectErrorReports:  1,
	}
	if o.ServerTLS != nil {
		leafOpts.TLSConfig = o.ServerTLS
		leafOpts.TLS, leafOpts.TLSVerify = true, o.ServerTLS.ClientAuth == tls.RequireAndVerifyClientCert
		leafOpts.TLSTimeout = 2
	}
	leafOpts.LeafNode.Remotes = s.leafRemotes(nil)
	leaf, err := server.NewServer(leafOpts)
	if err != nil {
		hub.Shutdown()
		return nil, fmt.Errorf("leaf server: %w", err)
	}
	leaf.SetLoggerV2(natsLogger{l: o.Log.Named("leaf"), faults: s.Faults, server: "leaf", onAuthError: s.authError}, false, false, false)
	leaf.Start()
	if !leaf.ReadyForConnections(30 * time.Second) {
		leaf.Shutdown()
		hub.Shutdown()
		return nil, errors.New("leaf server did not become ready (are its ports free?)")
	}
	s.Leaf, s.leafOpts = leaf, leafOpts
	s.grants = &ConsumerGrants{leaf: leaf, by: map[string]string{}, n: map[string]int{}}
	deadline := time.Now().Add(10 * time.Second)
	for leaf.NumLeafNodes() < 1 {
		if time.Now().After(deadline) {
			s.Shutdown()
			return nil, errors.New("leaf server did not connect to its hub")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return s, nil
}

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Ports are the ports the servers actually listen on.
type Ports struct {
	HubClient, HubLeaf, Cluster, LeafClient int
}

// Ports returns the bound ports (useful when 0 was asked for).
func (s *Servers) Ports() Ports {
	return Ports{
		HubClient:  s.Hub.Addr().(*net.TCPAddr).Port,
		HubLeaf:    s.hubLeafAddr().Port,
		Cluster:    s.Hub.ClusterAddr().Port,
		LeafClient: s.Leaf.Addr().(*net.TCPAddr).Port,
	}
}

func (s *Servers) hubLeafAddr() *net.TCPAddr {
	v, _ := s.Varz(s.Hub)
	return &net.TCPAddr{IP: net.ParseIP(s.opts.Host), Port: v.LeafNode.Port}
}

func (s *Servers) userURL(scheme string, r storage.Route) *url.URL {
	return &url.URL{Scheme: scheme, User: url.UserPassword(s.opts.User, s.opts.Password), Host: r.Addr()}
}

// leafRemotes builds the leaf server's remotes: its own hub first, then the
// leaf routes. Node-local operation subjects and the transaction plane stay
// off other nodes' hubs.
func (s *Servers) leafRemotes(routes []storage.Route) []*server.RemoteLeafOpts {
	own := storage.Route{Host: s.opts.Host, Port: s.hubLeafAddr().Port}
	if own.Host == "" || own.Host == "0.0.0.0" || own.Host == "::" {
		own.Host = "127.0.0.1"
	}
	remote := func(r storage.Route, foreign bool) *server.RemoteLeafOpts {
		ro := &server.RemoteLeafOpts{URLs: []*url.URL{s.userURL("nats-leaf", r)}, LocalAccount: ClusterdAccount,
			TLSConfig: s.opts.ClientTLS, TLS: s.opts.ClientTLS != nil, TLSTimeout: 2}
		if !foreign {
			// Leaf and hub run in one process: s2 framing (nats-server's
			// default "s2_auto", uncompressed on loopback) only costs CPU and
			// a copy per hop on every operation and replicated message.
			ro.Compression = server.CompressionOpts{Mode: server.CompressionOff}
		}
		if foreign {
			ro.DenyImports = []string{opsLocal, "txn.>"}
			ro.DenyExports = []string{opsLocal, "txn.>"}
		}
		return ro
	}
	out := []*server.RemoteLeafOpts{remote(own, false)}
	for _, r := range routes {
		out = append(out, remote(r, true))
	}
	return out
}

// InternalConn connects to the leaf server as clusterd itself, in-process.
func (s *Servers) InternalConn(name string, extra ...nats.Option) (*nats.Conn, error) {
	return s.inProcessConn(name, s.internalUser, s.internalPass, extra)
}

// UnservedOpsConn connects to the leaf server in-process as the user that is
// delivered requests on ops.cluster.* only for names not in
// ServerOptions.Operations: the connection for a catch-all that answers
// unknown operations.
func (s *Servers) UnservedOpsConn(name string, extra ...nats.Option) (*nats.Conn, error) {
	return s.inProcessConn(name, s.unservedUser, s.unservedPass, extra)
}

// InternalUserInfo is the login of clusterd's internal user, for
// benchmarks' floors that need clusterd's account over TCP.
func (s *Servers) InternalUserInfo() nats.Option {
	return nats.UserInfo(s.internalUser, s.internalPass)
}

// AppAccounts are the app users' accounts on the leaf server, sorted.
func (s *Servers) AppAccounts() []string {
	out := make([]string, 0, len(s.proxies))
	for a := range s.proxies {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// ProxyConn connects to the leaf server in-process inside app account acc,
// as clusterd: the connection that serves the operations, the micro
// protocol and the consumer requests there.
func (s *Servers) ProxyConn(acc, name string, extra ...nats.Option) (*nats.Conn, error) {
	p, ok := s.proxies[acc]
	if !ok {
		return nil, fmt.Errorf("no app account %s", acc)
	}
	return s.inProcessConn(name, p[0].Name, p[0].Password, extra)
}

// AppUnservedConn is UnservedOpsConn inside app account acc.
func (s *Servers) AppUnservedConn(acc, name string, extra ...nats.Option) (*nats.Conn, error) {
	p, ok := s.proxies[acc]
	if !ok {
		return nil, fmt.Errorf("no app account %s", acc)
	}
	return s.inProcessConn(name, p[1].Name, p[1].Password, extra)
}

func (s *Servers) inProcessConn(name, user, pass string, extra []nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.InProcessServer(s.Leaf),
		nats.UserInfo(user, pass),
		nats.MaxReconnects(-1),
	}, extra...)
	if s.opts.ClientTLS != nil {
		opts = append(opts, nats.Secure(s.opts.ClientTLS))
	}
	return nats.Connect("", opts...)
}

// ObservedRoutes reads the routes the servers are configured with now.
func (s *Servers) ObservedRoutes() (hub, leaf []storage.Route, err error) {
	hv, err := s.Varz(s.Hub)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range hv.Cluster.URLs {
		if r, ok := parseRouteURL(u); ok {
			hub = append(hub, r)
		}
	}
	lv, err := s.Varz(s.Leaf)
	if err != nil {
		return nil, nil, err
	}
	for i, rem := range lv.LeafNode.Remotes {
		if i == 0 {
			continue // own hub
		}
		for _, u := range rem.URLs {
			if r, ok := parseRouteURL(u); ok {
				leaf = append(leaf, r)
			}
		}
	}
	return hub, leaf, nil
}

func parseRouteURL(u string) (storage.Route, bool) {
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		u = pu.Host
	}
	h, p, err := net.SplitHostPort(u)
	if err != nil {
		return storage.Route{}, false
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return storage.Route{}, false
	}
	return storage.Route{Host: h, Port: n}, true
}

// SameRoutes says whether two route lists hold the same set.
func SameRoutes(a, b []storage.Route) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(r storage.Route) string { return r.Addr() }
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// ApplyHubRoutes makes the hub's cluster routes exactly routes, live.
func (s *Servers) ApplyHubRoutes(routes []storage.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := *s.hubOpts
	o.Routes = make([]*url.URL, 0, len(routes))
	for _, r := range routes {
		o.Routes = append(o.Routes, s.userURL("nats-route", r))
	}
	if err := s.Hub.ReloadOptions(&o); err != nil {
		return fmt.Errorf("reload hub routes: %w", err)
	}
	s.hubOpts = &o
	s.Faults.Retain("route", routeAddrs(routes))
	return nil
}

// ApplyLeafRoutes makes the leaf server's remotes its own hub plus routes, live.
func (s *Servers) ApplyLeafRoutes(routes []storage.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := *s.leafOpts
	o.LeafNode.Remotes = s.leafRemotes(routes)
	if err := s.Leaf.ReloadOptions(&o); err != nil {
		return fmt.Errorf("reload leaf remotes: %w", err)
	}
	s.leafOpts = &o
	s.Faults.Retain("leafnode", routeAddrs(routes))
	return nil
}

// HubInterest counts the subscriptions the hub knows of (local, routed,
// leafnodes) in clusterd's account that match subject.
func (s *Servers) HubInterest(subject string) int {
	acc, err := s.Hub.LookupAccount(ClusterdAccount)
	if err != nil {
		return 0
	}
	return acc.Interest(subject)
}

// RoutedPeers returns the server names of hubs this hub has a live route to.
func (s *Servers) RoutedPeers() []string {
	rz, err := s.Hub.Routez(nil)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !seen[r.RemoteName] {
			seen[r.RemoteName] = true
			out = append(out, r.RemoteName)
		}
	}
	slices.Sort(out)
	return out
}

// Shutdown stops leaf then hub and waits for both.
func (s *Servers) Shutdown() {
	if s.Leaf != nil {
		s.Leaf.Shutdown()
		s.Leaf.WaitForShutdown()
	}
	if s.Hub != nil {
		s.Hub.Shutdown()
		s.Hub.WaitForShutdown()
	}
}

// natsLogger logs nats-server's lines through zap. Lines about link faults
// clusterd explains (LinkFaults) are logged at debug.
type natsLogger struct {
	l      *zap.Logger
	faults *LinkFaults
	server string
	// onAuthError sees every refused login (authError).
	onAuthError func(msg string)
}

func (n natsLogger) Noticef(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	n.faults.Observe(n.server, msg)
	n.l.Debug(msg)
}
func (n natsLogger) Warnf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if n.faults.Observe(n.server, msg) {
		n.l.Debug(msg)
		return
	}
	// Our users' passwords are generated or configured secrets held in
	// memory; bcrypt would cost every route and leafnode handshake ~50 ms.
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		return
	}
	// A new source makes nats-server rebuild its sourcing state with a
	// backward scan and warn about it; clusterd logs the source change
	// itself ("replication sources updated"), so this is routine.
	if strings.Contains(msg, "Sourcing state is outdated") {
		n.l.Debug(msg)
		return
	}
	n.l.Warn(msg)
}
func (n natsLogger) Fatalf(f string, v ...any) { n.l.Error(fmt.Sprintf(f, v...)) }
func (n natsLogger) Errorf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if n.onAuthError != nil && strings.Contains(msg, server.ErrAuthentication.Error()) {
		n.onAuthError(msg)
	}
	if n.faults.Observe(n.server, msg) {
		n.l.Debug(msg)
		return
	}
	n.l.Warn(msg)
}

// authError tells, once per process, a client that tries the cluster
// secret's user on a client port what to connect as instead: deployments
// whose services connected as clustering.user before the secrets were
// separated see why they are refused and how to fix it.
func (s *Servers) authError(msg string) {
	if !strings.Contains(msg, "cid:") || !strings.Contains(msg, fmt.Sprintf("User %q", s.opts.User)) {
		return
	}
	if s.warnedClusterUser.CompareAndSwap(false, true) {
		s.log.Warn("a client tried to connect as "+s.opts.User+", the cluster user: clustering.user and clustering.password "+
			"authenticate node links only, never clients. Give the service a user of its own in clustering.leafServer.users "+
			"(or use the operator user printed at first start) and connect it to the leaf client port; see docs/migration.md",
			zap.String("nats", msg))
	}
}
func (n natsLogger) Debugf(f string, v ...any) {}
func (n natsLogger) Tracef(f string, v ...any) {}

// ClusterPort is the port of the hub's cluster listener (the clustering port).
func (s *Servers) ClusterPort() int { return s.Hub.ClusterAddr().Port }

// RoutedNodes returns the names of the nodes whose hub this hub has a live
// route to (hub server names are "<node>-hub"), sorted and without duplicates.
func (s *Servers) RoutedNodes() []string {
	peers := s.RoutedPeers()
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		if n, ok := strings.CutSuffix(p, "-hub"); ok {
			out = append(out, n)
		}
	}
	return out
}

func routeAddrs(routes []storage.Route) []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.Addr()
	}
	return out
}
