package storage

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Node records hold every subscription with a peer in one value, so with
// many tables decoding them dominated a node operation's CPU: each
// set_node_replication decoded the peer's record about five times across
// both nodes (its handler, the replication worker's desired state), ~1 ms
// each at 1000 tables. Decoded records are kept here per committed Badger
// version, so each version is decoded once.
//
// Only committed items may be looked up by version: an item a transaction
// has written itself carries the transaction's read timestamp, which a
// committed version of the same key can share. Write transactions therefore
// read keys they have written from what they wrote (round), and the
// committer, right after a commit and before the next (so the version it
// reads back is the one it wrote), files the records it wrote under their
// new versions: a record written is never decoded again.
type nodeCache struct {
	mu sync.Mutex
	m  map[string]cachedNode
}

type cachedNode struct {
	version uint64
	node    Node
}

// clone copies a record so callers may change it freely. StartTime
// pointers are shared: nothing writes through them.
func (n Node) clone() Node {
	n.Subscriptions = slices.Clone(n.Subscriptions)
	return n
}

// decodeNode decodes a committed node item, from the cache when this
// version was decoded before.
func (s *Store) decodeNode(item *badger.Item) (Node, error) {
	key, version := string(item.Key()), item.Version()
	s.nodes.mu.Lock()
	c, ok := s.nodes.m[key]
	s.nodes.mu.Unlock()
	if ok && c.version == version {
		return c.node.clone(), nil
	}
	var n Node
	if err := item.Value(func(b []byte) error { return json.Unmarshal(b, &n) }); err != nil {
		return Node{}, err
	}
	s.nodes.mu.Lock()
	if s.nodes.m == nil {
		s.nodes.m = map[string]cachedNode{}
	}
	if cur, ok := s.nodes.m[key]; !ok || cur.version < version {
		s.nodes.m[key] = cachedNode{version: version, node: n.clone()}
	}
	s.nodes.mu.Unlock()
	return n, nil
}

// getNode reads a node record in txn (rd: what txn wrote, nil for a
// read-only transaction), from the cache where it can. ok is false when
// there is none.
func (s *Store) getNode(txn reader, rd *round, key string) (Node, bool, error) {
	if rd != nil && rd.dirty[key] {
		if n, ok := rd.nodes[key]; ok {
			if n == nil {
				return Node{}, false, nil
			}
			return n.clone(), true, nil
		}
		var n Node
		ok, err := getJSON(txn, key, &n)
		return n, ok, err
	}
	item, err := txn.Get([]byte(key))
	if err == badger.ErrKeyNotFound {
		return Node{}, false, nil
	}
	if err != nil {
		return Node{}, false, err
	}
	n, err := s.decodeNode(item)
	return n, err == nil, err
}

// learnNodes files the node records just committed under their versions.
// Only the committer calls it, between a commit and the next one.
func (s *Store) learnNodes(nodes map[string]*Node) {
	if len(nodes) == 0 {
		return
	}
	_ = s.db.View(func(txn *badger.Txn) error {
		for key, n := range nodes {
			if n == nil {
				continue
			}
			item, err := txn.Get([]byte(key))
			if err != nil {
				continue
			}
			s.nodes.mu.Lock()
			if s.nodes.m == nil {
				s.nodes.m = map[string]cachedNode{}
			}
			s.nodes.m[key] = cachedNode{version: item.Version(), node: n.clone()}
			s.nodes.mu.Unlock()
		}
		return nil
	})
}
