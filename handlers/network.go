package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// Broadcaster reaches every node of the mesh at once.
type Broadcaster interface {
	Broadcast(ctx context.Context, call string, req any, wait time.Duration, onReply func(events.PeerReply) (done bool)) error
}

var clusterNetworkSchema = Schema{
	{Name: "timeout", Kind: kNumber, Min: ptr(1), Max: ptr(MaxNetworkTimeoutMS)},
	{Name: "connected_nodes", Kind: kBool},
	{Name: "routes", Kind: kBool},
}

// MaxNetworkTimeoutMS bounds cluster_network's timeout (ms): one minute.
const MaxNetworkTimeoutMS = 60000

// DefaultNetworkTimeout is how long cluster_network waits for nodes by default.
const DefaultNetworkTimeout = 2 * time.Second

// ClusterNetworkRequest is cluster_network's request.
type ClusterNetworkRequest struct {
	Timeout        *float64 `json:"timeout"`
	ConnectedNodes *bool    `json:"connected_nodes"`
	Routes         *bool    `json:"routes"`
}

// NetworkNode is one node in cluster_network's reply. ConnectedNodes and
// Routes are left out when the request turned them off.
type NetworkNode struct {
	Name           string           `json:"name"`
	ResponseTime   int64            `json:"response_time"` // whole ms, as HarperDB's
	ConnectedNodes *[]string        `json:"connected_nodes,omitempty"`
	Routes         *[]storage.Route `json:"routes,omitempty"`
}

// ClusterNetworkReply is cluster_network's reply.
type ClusterNetworkReply struct {
	Nodes []NetworkNode `json:"nodes"`
}

type peerNetworkReply struct {
	ConnectedNodes []string        `json:"connected_nodes"`
	Routes         []storage.Route `json:"routes"`
}

// ClusterNetwork asks every node of the mesh (this one included) for its live
// hub routes and desired routes. It answers once every node this hub has a
// live route to, and this one, have replied, or when the timeout passes,
// with whatever replied by then (nodes reachable only through leaf routes
// included if they were quick enough).
func (o *Ops) ClusterNetwork(ctx context.Context, _ events.Caller, req ClusterNetworkRequest) (ClusterNetworkReply, error) {
	wait := DefaultNetworkTimeout
	if req.Timeout != nil {
		wait = time.Duration(*req.Timeout * float64(time.Millisecond))
	}
	expected := map[string]bool{o.NodeName: true}
	for _, n := range o.Servers.RoutedNodes() {
		expected[n] = true
	}
	missing := len(expected)
	got := map[string]NetworkNode{}
	err := o.Mesh.Broadcast(ctx, callNetwork, struct{}{}, wait, func(r events.PeerReply) bool {
		if _, dup := got[r.Node]; dup || r.Err != nil {
			return false
		}
		var pr peerNetworkReply
		if json.Unmarshal(r.Result, &pr) != nil {
			return false
		}
		nn := NetworkNode{Name: r.Node, ResponseTime: Millis(r.Elapsed)}
		if req.ConnectedNodes == nil || *req.ConnectedNodes {
			cn := pr.ConnectedNodes
			if cn == nil {
				cn = []string{}
			}
			nn.ConnectedNodes = &cn
		}
		if req.Routes == nil || *req.Routes {
			rs := pr.Routes
			if rs == nil {
				rs = []storage.Route{}
			}
			nn.Routes = &rs
		}
		got[r.Node] = nn
		if expected[r.Node] {
			missing--
		}
		return missing == 0
	})
	if err != nil {
		return ClusterNetworkReply{}, fmt.Errorf("ask the mesh: %w", err)
	}
	reply := ClusterNetworkReply{Nodes: make([]NetworkNode, 0, len(got))}
	for _, n := range got {
		reply.Nodes = append(reply.Nodes, n)
	}
	sort.Slice(reply.Nodes, func(i, j int) bool { return reply.Nodes[i].Name < reply.Nodes[j].Name })
	return reply, nil
}

// PeerNetwork is every node's side of cluster_network: the nodes its hub has
// a live route to, and its desired routes (hub, then leaf).
func (o *Ops) PeerNetwork(ctx context.Context, from string, body []byte) (any, error) {
	rep := peerNetworkReply{ConnectedNodes: o.Servers.RoutedNodes(), Routes: []storage.Route{}}
	r, err := o.Store.Routes()
	if err != nil {
		return nil, fmt.Errorf("load routes: %w", err)
	}
	rep.Routes = append(append(rep.Routes, r.Hub...), r.Leaf...)
	return rep, nil
}

// Millis is d in whole milliseconds, rounded up: HarperDB's clients read
// these times as integers, and a node that answered within a fraction of a
// millisecond still took time (0 would read as "not measured").
func Millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
