package storage

import (
	"net"
	"slices"
	"strconv"
	"time"
)

// Route is a host and port of a remote hub listener (clustering or leafnode).
type Route struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Addr returns host:port, bracketing IPv6 literals.
func (r Route) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// Routes is the desired route set of the node, in the order they were added.
type Routes struct {
	Hub  []Route `json:"hub"`
	Leaf []Route `json:"leaf"`
}

// Subscription is the replication relationship for one table, from this node's
// point of view: Subscribe pulls the peer's transactions here, Publish lets the
// peer pull ours.
type Subscription struct {
	Database  string     `json:"database"`
	Table     string     `json:"table"`
	Subscribe bool       `json:"subscribe"`
	Publish   bool       `json:"publish"`
	StartTime *time.Time `json:"start_time,omitempty"`
	// Epoch grows each time the start position is reset (a new start_time),
	// telling the replication worker to re-source the table rather than resume.
	Epoch int64 `json:"epoch,omitempty"`
}

// Key identifies the table a subscription is about.
func (s Subscription) Key() TableKey { return TableKey{Database: s.Database, Table: s.Table} }

// Mirror returns the subscription as the peer must record it.
func (s Subscription) Mirror() Subscription {
	m := s
	m.Subscribe, m.Publish = s.Publish, s.Subscribe
	return m
}

// Node is a registered peer and the subscriptions this node has with it.
type Node struct {
	Name          string         `json:"name"`
	Subscriptions []Subscription `json:"subscriptions"`
	Added         time.Time      `json:"added"`
}

// Find returns the index of the subscription for table k, or -1.
func (n *Node) Find(k TableKey) int {
	for i, s := range n.Subscriptions {
		if s.Key() == k {
			return i
		}
	}
	return -1
}

// Notice is a message this node still owes a peer (kept until delivered):
// today only "remove", sent when remove_node or configure_cluster could not
// reach the peer.
type Notice struct {
	Peer string    `json:"peer"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
}

// TableKey names a table.
type TableKey struct {
	Database string `json:"database"`
	Table    string `json:"table"`
}

func (k TableKey) String() string { return k.Database + "." + k.Table }

// Table is a table this node holds.
type Table struct {
	TableKey
	Created time.Time `json:"created"`
}

// clone copies the route lists so callers may change them freely.
func (r Routes) clone() Routes {
	return Routes{Hub: slices.Clone(r.Hub), Leaf: slices.Clone(r.Leaf)}
}
