package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/membership"
	"github.com/clusterd/clusterd/storage"
	"go.uber.org/zap"
)

// The node operations: schemas, typed requests and replies, and HarperDB's
// phrasing. The node-record protocol itself is membership's.

func (o *Ops) nodeNameCheck(label string, v any) []string {
	s, _ := v.(string)
	if s == "" {
		return nil
	}
	if len(s) > MaxNameLen { // reported by the schema
		return nil
	}
	if p := storage.NameProblem(s); p != "" {
		return []string{label + " invalid, " + p}
	}
	if s == o.NodeName {
		return []string{label + " cannot be this nodes name"}
	}
	return nil
}

// removeNodeNameCheck is nodeNameCheck, except that a node stored under a
// name the naming rule refuses (stored before the rule) can be removed: that
// is how an operator cleans it up.
func (o *Ops) removeNodeNameCheck(label string, v any) []string {
	p := o.nodeNameCheck(label, v)
	if s, _ := v.(string); p != nil && s != o.NodeName {
		if _, stored, err := o.Store.Node(s); err == nil && stored {
			return nil
		}
	}
	return p
}

func (o *Ops) nodeSchema() Schema {
	return Schema{
		{Name: "node_name", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: o.nodeNameCheck},
		{Name: "subscriptions", Kind: kArray, Required: true, MinItems: 1, Items: subscriptionSchema},
	}
}

// NodeRequest is update_node's and set_node_replication's request.
type NodeRequest struct {
	NodeName      string           `json:"node_name"`
	Subscriptions []SubscriptionIn `json:"subscriptions"`
}

// AddNodeRequest is add_node's request: every subscription must be active.
type AddNodeRequest NodeRequest

func (r AddNodeRequest) check() []string { return requireActive("", r.Subscriptions) }

// RemoveNodeRequest is remove_node's request.
type RemoveNodeRequest struct {
	NodeName string `json:"node_name"`
}

// ConfigureClusterRequest is configure_cluster's request: the whole setup.
type ConfigureClusterRequest struct {
	Connections []NodeRequest `json:"connections"`
}

func (r ConfigureClusterRequest) check() []string {
	var problems []string
	seen := map[string]bool{}
	for i, c := range r.Connections {
		problems = append(problems, requireActive(fmt.Sprintf("connections[%d].", i), c.Subscriptions)...)
		if seen[c.NodeName] {
			problems = append(problems, fmt.Sprintf("'connections[%d].node_name' '%s' is listed more than once", i, c.NodeName))
		}
		seen[c.NodeName] = true
	}
	return problems
}

func storageSubs(in []SubscriptionIn) []storage.Subscription {
	subs := make([]storage.Subscription, len(in))
	for i, s := range in {
		subs[i] = s.toStorage()
	}
	return subs
}

// requireActive returns problems for subscriptions with both flags false
// (add_node and configure_cluster only).
func requireActive(prefix string, subs []SubscriptionIn) []string {
	var p []string
	for i, s := range subs {
		if !s.Subscribe && !s.Publish {
			p = append(p, fmt.Sprintf("'%ssubscriptions[%d]' subscribe and/or publish must be set to true when adding a node", prefix, i))
		}
	}
	return p
}

// peerError phrases membership's errors about peer for operation op in
// HarperDB's words.
func peerError(op, node string, err error) error {
	var pe *membership.PeerError
	var busy *membership.BusyError
	var re *events.RemoteError
	switch {
	case errors.Is(err, membership.ErrStopping):
		return events.Errorf(503, "Service is shutting down, retry on another node or later")
	case errors.As(err, &busy):
		return events.Wrap(409, err, fmt.Sprintf("Unable to %s, node '%s' kept changing the same records from its side; nothing was changed, retry.", op, node))
	case !errors.As(err, &pe):
		if errors.Is(err, context.DeadlineExceeded) {
			return events.Wrap(504, err, fmt.Sprintf("Unable to %s, node '%s': the operation ran out of time.", op, node))
		}
		return err
	case errors.Is(err, events.ErrNotListening):
		return events.Errorf(500, "Unable to %s, node '%s' is not listening.", op, node)
	case errors.Is(err, events.ErrNoResponse):
		return events.Errorf(500, "Unable to %s, node '%s' is listening but did not respond.", op, node)
	case errors.As(err, &re):
		return events.Errorf(500, "Error returned from remote node %s: %s", node, re.Message)
	default:
		return events.Wrap(500, err, fmt.Sprintf("Unable to %s, node '%s': %v", op, node, pe.Err))
	}
}

// AddNodeReply is add_node's reply.
type AddNodeReply struct {
	Message string            `json:"message"`
	Added   []SubscriptionOut `json:"added"`
	Skipped []SubscriptionOut `json:"skipped"`
}

// UpdateNodeReply is update_node's and set_node_replication's reply.
type UpdateNodeReply struct {
	Message string            `json:"message"`
	Updated []SubscriptionOut `json:"updated"`
	Skipped []SubscriptionOut `json:"skipped"`
}

// AddNode registers a peer with subscriptions on both nodes.
func (o *Ops) AddNode(ctx context.Context, _ events.Caller, req AddNodeRequest) (AddNodeReply, error) {
	added, skipped, msg, err := o.setNode(ctx, "add_node", NodeRequest(req), membership.Add)
	if err != nil {
		return AddNodeReply{}, err
	}
	return AddNodeReply{Message: msg, Added: added, Skipped: skipped}, nil
}

// UpdateNode upserts a peer's subscriptions on both nodes.
func (o *Ops) UpdateNode(ctx context.Context, _ events.Caller, req NodeRequest) (UpdateNodeReply, error) {
	return o.updateNode(ctx, "update_node", req)
}

// SetNodeReplication is HarperDB's other name for UpdateNode (its errors
// name set_node_replication).
func (o *Ops) SetNodeReplication(ctx context.Context, _ events.Caller, req NodeRequest) (UpdateNodeReply, error) {
	return o.updateNode(ctx, "set_node_replication", req)
}

func (o *Ops) updateNode(ctx context.Context, op string, req NodeRequest) (UpdateNodeReply, error) {
	updated, skipped, msg, err := o.setNode(ctx, op, req, membership.Update)
	if err != nil {
		return UpdateNodeReply{}, err
	}
	return UpdateNodeReply{Message: msg, Updated: updated, Skipped: skipped}, nil
}

func (o *Ops) setNode(ctx context.Context, op string, req NodeRequest, mode membership.Mode) (done, skipped []SubscriptionOut, msg string, err error) {
	subs := storageSubs(req.Subscriptions)
	res, err := o.Members.Link(ctx, req.NodeName, subs, mode)
	if errors.Is(err, membership.ErrExists) {
		return nil, nil, "", events.Errorf(400, "Node '%s' has already been added, perform update_node to proceed.", req.NodeName)
	}
	if err != nil {
		return nil, nil, "", peerError(op, req.NodeName, err)
	}
	msgAll, none := "Successfully added '"+req.NodeName+"' to manifest", "Unable to create subscriptions due to schema and/or tables not existing on the local or remote node"
	if mode != membership.Add {
		msgAll, none = "Successfully updated '"+req.NodeName+"'", "Unable to update subscriptions due to schema and/or tables not existing on the local or remote node"
	}
	msg = msgAll
	switch {
	case len(res.Added) == 0:
		msg = none
	case len(res.Skipped) > 0:
		msg = "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node"
	}
	return outs(res.Added), outs(res.Skipped), msg, nil
}

// removeNodeSchema checks node_name as add_node does (HarperDB validates
// before looking the node up).
func (o *Ops) removeNodeSchema() Schema {
	return Schema{{Name: "node_name", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: o.removeNodeNameCheck}}
}

// RemoveNodeReply is remove_node's reply.
type RemoveNodeReply struct {
	Message string `json:"message"`
}

// RemoveNode forgets a peer here, and tells the peer; when the peer cannot be
// reached the notice is kept and delivered when it returns.
func (o *Ops) RemoveNode(ctx context.Context, _ events.Caller, req RemoveNodeRequest) (RemoveNodeReply, error) {
	told, err := o.Members.Remove(ctx, req.NodeName)
	switch {
	case errors.Is(err, membership.ErrNotFound):
		return RemoveNodeReply{}, events.Errorf(400, "Node '%s' was not found.", req.NodeName)
	case err != nil:
		return RemoveNodeReply{}, peerError("remove_node", req.NodeName, err)
	case !told:
		return RemoveNodeReply{Message: "Successfully removed '" + req.NodeName + "' from local manifest, however there was an error reaching remote node. Check the logs for more details."}, nil
	}
	return RemoveNodeReply{Message: "Successfully removed '" + req.NodeName + "' from manifest"}, nil
}

// PeerHandlers returns the inter-node calls this node answers.
func (o *Ops) PeerHandlers() map[string]events.PeerHandler {
	h := o.Members.Handlers()
	h[callStatus] = o.PeerStatus
	h[callNetwork] = o.PeerNetwork
	return h
}

func (o *Ops) configureSchema() Schema {
	return Schema{
		{Name: "connections", Kind: kArray, Required: true, Items: o.nodeSchema()},
	}
}

// ConfigureConnection is one node's outcome in configure_cluster's reply.
type ConfigureConnection struct {
	NodeName string       `json:"node_name"`
	Response AddNodeReply `json:"response"`
}

// ConfigureClusterReply is configure_cluster's reply.
type ConfigureClusterReply struct {
	Message     string                `json:"message"`
	Connections []ConfigureConnection `json:"connections"`
	FailedNodes []string              `json:"failed_nodes,omitempty"`
}

// ConfigureCluster replaces the whole setup (membership.Configure: peers are
// told first, then the local desired state switches in one transaction).
func (o *Ops) ConfigureCluster(ctx context.Context, _ events.Caller, req ConfigureClusterRequest) (ConfigureClusterReply, error) {
	conns := make([]membership.Connection, len(req.Connections))
	for i, c := range req.Connections {
		conns[i] = membership.Connection{Name: c.NodeName, Subscriptions: storageSubs(c.Subscriptions)}
	}
	results, err := o.Members.Configure(ctx, conns)
	var ce *membership.ConfigureError
	var busy *membership.BusyError
	switch {
	case errors.As(err, &ce):
		for _, n := range ce.Failed {
			o.Log.Warn("configure_cluster: node not configured", zap.String("op", "configure_cluster"), zap.String("peer", n), zap.Error(ce.Causes[n]))
		}
		return ConfigureClusterReply{}, &events.Error{Status: 500, Message: "Failed to configure the cluster. Check the logs for more details.", Extra: map[string]any{"failed_nodes": ce.Failed}}
	case errors.As(err, &busy):
		return ConfigureClusterReply{}, events.Wrap(409, err, fmt.Sprintf("Unable to configure_cluster, node '%s' kept changing the same records from its side; nothing was changed, retry.", busy.Peer))
	case errors.Is(err, membership.ErrStopping):
		return ConfigureClusterReply{}, events.Errorf(503, "Service is shutting down, retry on another node or later")
	case errors.Is(err, context.DeadlineExceeded):
		return ConfigureClusterReply{}, events.Wrap(504, err, "Unable to configure_cluster: the operation ran out of time.")
	case err != nil:
		return ConfigureClusterReply{}, err
	}
	reply := ConfigureClusterReply{Message: "Configure cluster complete.", Connections: []ConfigureConnection{}}
	for _, r := range results {
		if r.Err != nil {
			o.Log.Warn("configure_cluster: node not configured", zap.String("op", "configure_cluster"), zap.String("peer", r.Name), zap.Error(r.Err))
			reply.FailedNodes = append(reply.FailedNodes, r.Name)
			continue
		}
		msg := "Successfully added '" + r.Name + "' to manifest"
		if len(r.Skipped) > 0 {
			msg = "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node"
		}
		reply.Connections = append(reply.Connections, ConfigureConnection{NodeName: r.Name, Response: AddNodeReply{Message: msg, Added: outs(r.Added), Skipped: outs(r.Skipped)}})
	}
	sort.Strings(reply.FailedNodes)
	if len(reply.FailedNodes) > 0 {
		reply.Message = "Configure cluster was partially successful. Errors occurred when attempting to configure the following nodes. Check the logs for more details."
	}
	return reply, nil
}
