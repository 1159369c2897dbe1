package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
)

// Inter-node calls of the status operations.
const (
	callStatus  = "status"
	callNetwork = "network"
)

// Connection statuses in cluster_status, HarperDB's words.
const (
	StatusOpen         = "open"
	StatusClosed       = "closed"
	StatusNoResponders = "NoResponders"
	StatusTimeout      = "Timeout"
)

// Ports are a node's clustering (hub cluster listener) and operations API
// ports; `{}` for a node that did not answer (HarperDB always sends the key).
type Ports struct {
	Clustering    int `json:"clustering,omitempty"`
	OperationsAPI int `json:"operations_api,omitempty"`
}

// SystemInfo describes the clusterd build a node runs.
type SystemInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Arch      string `json:"arch"`
}

// SubscriptionStatus is a subscription with its replication state, from the
// point of view of the node answering cluster_status.
type SubscriptionStatus struct {
	SubscriptionOut
	// Converged: a healthy source carries the peer's transactions here
	// (always true when subscribe is false: nothing has to flow here).
	Converged bool   `json:"converged"`
	LastError string `json:"last_error,omitempty"`
	// Lag counts the transactions the peer holds for this table that this
	// node has not received; null when the peer could not be asked.
	Lag *uint64 `json:"lag"`
}

// ConnectionStatus is one registered node in cluster_status. Ports, latency,
// uptime and system_info are only known when the node answered (status open);
// ports is then `{}`. latency_ms is whole milliseconds, as HarperDB's.
type ConnectionStatus struct {
	NodeName      string               `json:"node_name"`
	Status        string               `json:"status"`
	Ports         Ports                `json:"ports"`
	LatencyMS     *int64               `json:"latency_ms,omitempty"`
	Uptime        string               `json:"uptime,omitempty"`
	Subscriptions []SubscriptionStatus `json:"subscriptions"`
	SystemInfo    *SystemInfo          `json:"system_info,omitempty"`
	// Error says why a node that is not open could not be asked.
	Error string `json:"error,omitempty"`
}

// ClusterStatusReply is cluster_status' reply.
type ClusterStatusReply struct {
	NodeName    string             `json:"node_name"`
	IsEnabled   bool               `json:"is_enabled"`
	Connections []ConnectionStatus `json:"connections"`
	// LinkProblems (beyond HarperDB) are this node's link faults: duplicate
	// node names, cluster credentials or TLS that differ between nodes, and
	// routes to addresses where nothing answers.
	LinkProblems []topology.LinkFault `json:"link_problems,omitempty"`
}

// peerStatusRequest asks a peer about itself and, for each table this node
// pulls from it, how many of its transactions lie at or after a position.
type peerStatusRequest struct {
	Tables []lagQuery `json:"tables"`
}

type lagQuery struct {
	storage.TableKey
	Next  uint64    `json:"next,omitempty"` // first sequence not received; 0: use Since
	Since time.Time `json:"since,omitzero"` // when Next is 0
}

type peerStatusReply struct {
	UptimeMS   int64      `json:"uptime_ms"`
	Ports      Ports      `json:"ports"`
	SystemInfo SystemInfo `json:"system_info"`
	// Lag answers the request's tables in order; null when it could not be
	// counted.
	Lag []*uint64 `json:"lag"`
	// LastSeq is the last sequence of the peer's transaction stream (0 when
	// unknown). A caller that has received beyond it is looking at a stream
	// that was recreated or lost data: its sources stall there.
	LastSeq uint64 `json:"last_seq,omitempty"`
}

func (o *Ops) systemInfo() SystemInfo {
	return SystemInfo{Version: o.Version, GoVersion: runtime.Version(), Platform: runtime.GOOS, Arch: runtime.GOARCH}
}

func (o *Ops) ports() Ports {
	return Ports{Clustering: o.Servers.ClusterPort(), OperationsAPI: o.HTTPPort()}
}

// ClusterStatus reports every registered node: asked in parallel, each within
// the inter-node timeout, sorted by name.
func (o *Ops) ClusterStatus(ctx context.Context, _ events.Caller, _ NoRequest) (ClusterStatusReply, error) {
	reply := ClusterStatusReply{NodeName: o.NodeName, IsEnabled: o.ClusteringEnabled, Connections: []ConnectionStatus{}}
	if !o.ClusteringEnabled {
		return reply, nil
	}
	nodes, err := o.Store.Nodes()
	if err != nil {
		return ClusterStatusReply{}, fmt.Errorf("load nodes: %w", err)
	}
	repl := o.Repl.Status()
	reply.Connections = make([]ConnectionStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply.Connections[i] = o.connectionStatus(ctx, n, repl[n.Name])
		}()
	}
	wg.Wait()
	sort.Slice(reply.Connections, func(i, j int) bool { return reply.Connections[i].NodeName < reply.Connections[j].NodeName })
	reply.LinkProblems = o.Servers.LinkProblems()
	return reply, nil
}

// connectionStatus asks one peer. The local replication state is known
// whatever the peer's status; lag needs the peer.
func (o *Ops) connectionStatus(ctx context.Context, n storage.Node, peerRepl topology.PeerReplication) ConnectionStatus {
	c := ConnectionStatus{NodeName: n.Name, Subscriptions: make([]SubscriptionStatus, len(n.Subscriptions))}
	positions, posErr := o.Repl.Positions(ctx, replicable(n))
	var req peerStatusRequest
	asked := map[storage.TableKey]int{} // index in req.Tables
	for i, s := range n.Subscriptions {
		ss := SubscriptionStatus{SubscriptionOut: subscriptionOut(s), Converged: true}
		if !s.Subscribe {
			ss.Lag = new(uint64)
			c.Subscriptions[i] = ss
			continue
		}
		if msg := badNameError(n.Name, s.Key()) + o.lossError(n.Name, s.Key()); msg != "" {
			ss.Converged, ss.LastError = false, msg
			c.Subscriptions[i] = ss
			continue
		}
		// Converged: a source without error carries the table. Otherwise
		// the error closest to the table explains why not.
		p, known := positions[s.Key()]
		switch {
		case posErr != nil:
			ss.Converged, ss.LastError = false, posErr.Error()
		case p.SourceError != "":
			ss.Converged, ss.LastError = false, p.SourceError
		case known && p.Sourced:
		case peerRepl.LastError != "":
			ss.Converged, ss.LastError = false, peerRepl.LastError
		default:
			ss.Converged = false // the worker has not carried it out yet
		}
		if known {
			asked[s.Key()] = len(req.Tables)
			req.Tables = append(req.Tables, lagQuery{TableKey: s.Key(), Next: p.Next, Since: p.Since})
		}
		c.Subscriptions[i] = ss
	}
	if req.Tables == nil {
		req.Tables = []lagQuery{}
	}
	var rep peerStatusReply
	start := time.Now()
	err := o.Peers.Call(ctx, n.Name, callStatus, req, &rep)
	elapsed := time.Since(start)
	var re *events.RemoteError
	switch {
	case err == nil:
		c.Status = StatusOpen
	case errors.Is(err, events.ErrNotListening):
		c.Status, c.Error = StatusNoResponders, "node '"+n.Name+"' is not listening"
		return c
	case errors.Is(err, events.ErrNoResponse):
		c.Status, c.Error = StatusTimeout, "node '"+n.Name+"' is listening but did not respond"
		return c
	case errors.As(err, &re):
		c.Status, c.Error = StatusClosed, "Error returned from remote node "+n.Name+": "+re.Message
		return c
	default:
		c.Status, c.Error = StatusClosed, err.Error()
		return c
	}
	// Round trip of the status call, the peer's counting included.
	ms := Millis(elapsed)
	c.LatencyMS = &ms
	c.Ports = rep.Ports
	c.Uptime = FormatUptime(time.Duration(rep.UptimeMS) * time.Millisecond)
	c.SystemInfo = &rep.SystemInfo
	for i, s := range n.Subscriptions {
		j, ok := asked[s.Key()]
		if !ok || !s.Subscribe || j >= len(rep.Lag) {
			continue
		}
		c.Subscriptions[i].Lag = rep.Lag[j]
		if next := req.Tables[j].Next; rep.LastSeq > 0 && next > rep.LastSeq+1 {
			c.Subscriptions[i].Converged = false
			c.Subscriptions[i].LastError = fmt.Sprintf("this node has received %s's transactions up to sequence %d but its stream ends at %d: "+
				"the peer's stream was recreated or lost data, and replication stalls until the subscription is re-sourced (update_node with a start_time)",
				n.Name, next-1, rep.LastSeq)
		}
	}
	return c
}

// pendingInFlight bounds the lag counts PeerStatus has in flight.
const pendingInFlight = 32

// PeerStatus is the peer side of cluster_status: describe this node and
// count, per table asked about, this node's own transactions the caller has
// not received.
func (o *Ops) PeerStatus(ctx context.Context, from string, body []byte) (any, error) {
	var req peerStatusRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, events.DecodeError("bad status request", err)
	}
	rep := peerStatusReply{
		UptimeMS:   time.Since(o.Started).Milliseconds(),
		Ports:      o.ports(),
		SystemInfo: o.systemInfo(),
		Lag:        make([]*uint64, len(req.Tables)),
	}
	if len(req.Tables) > 0 {
		if last, err := o.Txn.LastSeq(ctx); err == nil {
			rep.LastSeq = last
		}
	}
	// The last transaction of every table asked about, in batched reads: a
	// table whose last transaction lies before the caller's next position
	// (or before its start time) has no lag, exactly, without a count. Only
	// the others are counted, one direct get each, many in flight at once
	// (a count per table made cluster_status O(tables) round trips: 7 s at
	// 10 nodes × 2000 tables).
	subjects := make([]string, len(req.Tables))
	for i, q := range req.Tables {
		subjects[i] = topology.OriginSubject(q.TableKey, o.NodeName)
	}
	lasts, lastErr := o.Txn.LastMsgs(ctx, subjects)
	sem := make(chan struct{}, pendingInFlight)
	var wg sync.WaitGroup
	for i, q := range req.Tables {
		if lastErr == nil {
			last, has := lasts[subjects[i]]
			if !has || (q.Next > 0 && last.Seq < q.Next) || (q.Next == 0 && !last.Time.IsZero() && last.Time.Before(q.Since)) {
				rep.Lag[i] = new(uint64)
				continue
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := o.Txn.Pending(ctx, topology.OriginSubject(q.TableKey, o.NodeName), q.Next, q.Since)
			if err == nil {
				rep.Lag[i] = &n
			} // else unknown: null
		}()
	}
	wg.Wait()
	return rep, nil
}

// FormatUptime renders d the way HarperDB's cluster_status does
// ("30d 1h 18m 8s") with its two bugs fixed: months are kept, and there is no
// trailing space. The breakdown is moment.js' duration (which HarperDB
// used): whole seconds, minutes, hours and days; days fold into months of
// 146097/4800 days (the Gregorian average, 30.436875 days), each month taking
// the ceiling of that many days off the day count; twelve months make a year.
// So 30 days stay "30d", 31 days are "1mo", 61 days "2mo", 366 days "1y".
// Units that are zero are left out; a duration under a second is "0s".
func FormatUptime(d time.Duration) string {
	secs := max(int64(d/time.Second), 0)
	s, mins := secs%60, secs/60
	m, hours := mins%60, mins/60
	h, days := hours%24, hours/24
	months := days * 4800 / 146097
	days -= (months*146097 + 4799) / 4800
	years := months / 12
	months %= 12
	var parts []string
	for _, u := range []struct {
		n    int64
		unit string
	}{{years, "y"}, {months, "mo"}, {days, "d"}, {h, "h"}, {m, "m"}, {s, "s"}} {
		if u.n > 0 {
			parts = append(parts, strconv.FormatInt(u.n, 10)+u.unit)
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts, " ")
}
