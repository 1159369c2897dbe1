package topology

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Link problems between nodes — two nodes with one name, cluster passwords
// that differ, TLS certificates from another CA, a route to an address where
// nothing listens — show up only as nats-server log lines, repeated every
// second or so, on one or both ends. LinkFaults reads those lines, keeps one
// fault per (link, kind, remote), says it once at warn in clusterd's words,
// and has the raw lines it explains logged at debug. cluster_status,
// /readyz and /metrics show what is active.

// Kinds of link faults.
const (
	FaultDuplicateName = "duplicate_name" // another node has this node's name
	FaultCredentials   = "credentials"    // cluster user/password differ between nodes
	FaultTLS           = "tls"            // TLS handshake between nodes fails
	FaultClusterName   = "cluster_name"   // clustering.hubServer.cluster.name differs
	FaultRefused       = "refused"        // the other end closes a route before it is set up
	FaultUnreachable   = "unreachable"    // nothing answers at a route's address
)

// LinkFault is one problem on the links between this node and another.
type LinkFault struct {
	Kind string `json:"kind"`
	// Link is "route" (hub cluster routes) or "leafnode" (leaf routes).
	Link string `json:"link"`
	// Remote is the other end: host:port for links this node dials, the
	// peer's host (or name) for links the peer dials.
	Remote string `json:"remote"`
	// Message says what is wrong and what to do, in config keys.
	Message string `json:"message"`
	// Fatal faults are mismatches no retry repairs: /readyz fails on them.
	Fatal bool      `json:"fatal"`
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// Thresholds: a fault counts once nats-server reported it faultRepeats
// times (a route reload can refuse a link once, legitimately), and ends
// when no report came for its expiry.
const (
	faultRepeats = 3
	// Mismatches repeat every second (route reconnect delay).
	faultExpiry = 10 * time.Second
	// A dead address is retried with backoff up to 30 s (ConnectBackoff).
	unreachableExpiry = 65 * time.Second
)

type faultKey struct{ link, kind, remote string }

// LinkFaults collects link faults from nats-server's log lines. Safe for
// concurrent use.
type LinkFaults struct {
	node string // this node's name
	log  *zap.Logger
	now  func() time.Time

	mu     sync.Mutex
	faults map[faultKey]*LinkFault
}

// NewLinkFaults returns an empty collector for node's servers.
func NewLinkFaults(node string, log *zap.Logger) *LinkFaults {
	if log == nil {
		log = zap.NewNop()
	}
	return &LinkFaults{node: node, log: log, now: time.Now, faults: map[faultKey]*LinkFault{}}
}

var (
	reConnPrefix  = regexp.MustCompile(`^(\S+) - (rid|lid|cid|gid):\d+ - (.*)$`)
	reDupName     = regexp.MustCompile(`^Remote server has a duplicate name: "([^"]*)"`)
	reClosedOwn   = regexp.MustCompile(`^Router connection closed: .*Remote: ([^,\s]+)`)
	reRouteDial   = regexp.MustCompile(`^Error trying to connect to route \(attempt \d+\): (?:dial tcp )?(\S+?):? (.*)$`)
	reLeafDial    = regexp.MustCompile(`^Error trying to connect as leafnode to remote server "([^"]+)" \(attempt \d+\): (.*)$`)
	reTLSFail     = regexp.MustCompile(`^TLS (route|leafnode) handshake error: (.*)$`)
	reCreated     = regexp.MustCompile(`^(\S+) - (rid|lid):\d+ - (?:Route|Leafnode) connection created`)
	reAuthViolate = regexp.MustCompile(`^(Route|Leafnode) Error '?Authorization Violation'?`)
)

// classify reads one nats-server log line. It returns the fault it
// reports, if any; own is this node's hub server name.
func classify(own, line string) (LinkFault, bool) {
	addr, kind, msg := "", "", line
	if m := reConnPrefix.FindStringSubmatch(line); m != nil {
		addr, kind, msg = m[1], m[2], m[3]
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	link := map[string]string{"rid": "route", "lid": "leafnode"}[kind]
	switch {
	case kind == "rid" && reDupName.MatchString(msg):
		name := strings.TrimSuffix(reDupName.FindStringSubmatch(msg)[1], "-hub")
		return LinkFault{Kind: FaultDuplicateName, Link: "route", Remote: host, Fatal: true,
			Message: fmt.Sprintf("a node at %s joins the mesh with this node's own name '%s': node names must be unique in a mesh; give one of the two nodes another clustering.nodeName (the default is the hostname)", host, name)}, true
	case kind == "rid" && reClosedOwn.MatchString(msg) && reClosedOwn.FindStringSubmatch(msg)[1] == own:
		return LinkFault{Kind: FaultDuplicateName, Link: "route", Remote: addr, Fatal: true,
			Message: fmt.Sprintf("the route to %s reaches a node with this node's own name '%s': node names must be unique in a mesh; give one of the two nodes another clustering.nodeName (the default is the hostname)", addr, strings.TrimSuffix(own, "-hub"))}, true
	case kind == "rid" && strings.HasPrefix(msg, "Router connection closed: Cluster Name Conflict"):
		// Keyed by host: the end that accepts sees a new port per attempt.
		return LinkFault{Kind: FaultClusterName, Link: "route", Remote: host, Fatal: true,
			Message: fmt.Sprintf("a route with the node at %s is closed because its cluster name differs from this node's: clustering.hubServer.cluster.name must be the same on every node of a mesh", host)}, true
	case kind == "rid" && msg == "Router connection closed: Client Closed":
		// Closed by the other end before it said who it is (no "Remote:"
		// tag): seen on the plain-text end of a route to a node with TLS.
		return LinkFault{Kind: FaultRefused, Link: "route", Remote: addr,
			Message: fmt.Sprintf("the route to %s is closed by the node there before it is set up, again and again: clustering.tls must be set on all nodes or on none, and the node there must accept this one", addr)}, true
	case link != "" && strings.HasPrefix(msg, "authentication error"):
		return LinkFault{Kind: FaultCredentials, Link: link, Remote: host, Fatal: true,
			Message: fmt.Sprintf("a node at %s opened a %s to this node with a cluster user or password this node does not accept: clustering.user and clustering.password must be the same on every node", host, link)}, true
	case link != "" && reAuthViolate.MatchString(msg):
		return LinkFault{Kind: FaultCredentials, Link: link, Remote: addr, Fatal: true,
			Message: fmt.Sprintf("the %s to %s is refused: the node there does not accept this node's cluster user or password; clustering.user and clustering.password must be the same on every node", link, addr)}, true
	case link != "" && reTLSFail.MatchString(msg):
		why := reTLSFail.FindStringSubmatch(msg)[2]
		// Keyed by host: the end that accepts sees a new port per attempt.
		return LinkFault{Kind: FaultTLS, Link: link, Remote: host, Fatal: true,
			Message: fmt.Sprintf("the TLS handshake of a %s with the node at %s fails (%s): every node's clustering.tls certificate must be signed by a CA the others trust (clustering.tls.certificateAuthority), and TLS must be on for all nodes or none", link, host, why)}, true
	case addr == "" && reRouteDial.MatchString(msg):
		m := reRouteDial.FindStringSubmatch(msg)
		return LinkFault{Kind: FaultUnreachable, Link: "route", Remote: m[1],
			Message: fmt.Sprintf("nothing answers at hub route %s (%s): is the node there running, and is that its clustering port (clustering.hubServer.cluster.network.port)? Remove a route that is no longer wanted with cluster_delete_routes", m[1], strings.TrimSpace(m[2]))}, true
	case addr == "" && reLeafDial.MatchString(msg):
		m := reLeafDial.FindStringSubmatch(msg)
		return LinkFault{Kind: FaultUnreachable, Link: "leafnode", Remote: m[1],
			Message: fmt.Sprintf("nothing answers at leaf route %s (%s): is the node there running, and is that its leafnode port (clustering.hubServer.leafNodes.network.port)? Remove a route that is no longer wanted with cluster_delete_routes", m[1], strings.TrimPrefix(m[2], "dial tcp "+m[1]+": "))}, true
	}
	return LinkFault{}, false
}

// Observe takes one nats-server log line of server ("hub" or "leaf") and
// reports whether it is a link fault LinkFaults explains (the caller then
// logs the raw line at debug).
func (f *LinkFaults) Observe(server, line string) bool {
	if f == nil {
		return false
	}
	if m := reCreated.FindStringSubmatch(line); m != nil {
		f.linked(map[string]string{"rid": "route", "lid": "leafnode"}[m[2]], m[1])
		return false
	}
	lf, ok := classify(f.node+"-hub", line)
	if !ok {
		return false
	}
	now := f.now()
	k := faultKey{lf.Link, lf.Kind, lf.Remote}
	f.mu.Lock()
	cur := f.faults[k]
	if cur == nil || now.Sub(cur.Last) > expiry(cur.Kind) {
		lf.Since, lf.Last, lf.Count = now, now, 1
		f.faults[k] = &lf
		cur = &lf
	} else {
		cur.Last = now
		cur.Count++
		cur.Message = lf.Message // the latest cause (e.g. refused vs timeout)
	}
	announce := cur.Count == faultRepeats
	snapshot := *cur
	f.mu.Unlock()
	if announce {
		f.log.Warn("link problem",
			zap.String("kind", snapshot.Kind),
			zap.String("link", snapshot.Link),
			zap.String("server", server),
			zap.String("remote", snapshot.Remote),
			zap.String("reason", snapshot.Message))
	}
	return true
}

func expiry(kind string) time.Duration {
	if kind == FaultUnreachable {
		return unreachableExpiry
	}
	return faultExpiry
}

// Active returns the faults reported often enough and recently enough,
// sorted by kind, link and remote.
func (f *LinkFaults) Active() []LinkFault {
	if f == nil {
		return nil
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []LinkFault
	for k, lf := range f.faults {
		if now.Sub(lf.Last) > expiry(lf.Kind) {
			delete(f.faults, k)
			continue
		}
		if lf.Count >= faultRepeats {
			out = append(out, *lf)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Kind+"\x00"+a.Link+"\x00"+a.Remote < b.Kind+"\x00"+b.Link+"\x00"+b.Remote
	})
	return out
}

// Retain forgets faults of links this node dials (remote host:port) whose
// address is no longer among routes of that link: a deleted route's fault
// ends with it instead of lingering until it expires.
func (f *LinkFaults) Retain(link string, routes []string) {
	if f == nil {
		return
	}
	ports := map[string]bool{}
	for _, r := range routes {
		if _, p, err := net.SplitHostPort(r); err == nil {
			ports[p] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.faults {
		if k.link != link {
			continue
		}
		_, p, err := net.SplitHostPort(k.remote)
		if err != nil {
			continue // the peer dials us: it ends when the peer stops
		}
		if _, perr := strconv.Atoi(p); perr == nil && !ports[p] && !slices.Contains(routes, k.remote) {
			delete(f.faults, k)
		}
	}
}

// linked ends the unreachable fault of a link to addr that has just been
// made: the node there answers now (a dead address otherwise stays reported
// until its long expiry). A refused link is also made before it is closed
// again, so that fault ends only when the closes stop.
func (f *LinkFaults) linked(link, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.faults {
		if k.link == link && k.remote == addr && k.kind == FaultUnreachable {
			delete(f.faults, k)
		}
	}
}

// LinkProblems are the active link faults of the node's servers.
func (s *Servers) LinkProblems() []LinkFault { return s.Faults.Active() }
