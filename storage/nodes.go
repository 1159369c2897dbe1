package storage

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Node records. A node's own key (node/<name>) holds its name and when it
// was added; each subscription has a key of its own
// (nsub/<name>\x00<db>\x00<table>) with its position in the record. So a
// change of one subscription writes one small key, whatever the number of
// tables: with the whole record in one value, every set_node_replication at
// 1000 tables encoded and wrote ~120 KB on both nodes (p50 7.6 ms against
// 1.2 ms at one table).
//
// Every committed record is also kept decoded in memory (nodeSet): the
// committer is the store's only writer and files what it wrote right after
// each commit, before the next transaction begins, so the set is always the
// committed state, and reads need neither Badger nor decoding.

const prefixSub = "nsub/"

// nodeMeta is what a node's own key holds. Records written before
// subscriptions had keys of their own carry them inline; Open moves them.
type nodeMeta struct {
	Name          string         `json:"name"`
	Added         time.Time      `json:"added"`
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
}

// subRecord is one subscription's value; Pos orders a record's
// subscriptions (ascending, not necessarily contiguous).
type subRecord struct {
	Subscription
	Pos int64 `json:"pos"`
}

func subKey(node string, k TableKey) string {
	return prefixSub + node + "\x00" + k.Database + "\x00" + k.Table
}

// nodeEntry is a decoded record; entries are never changed once built (a
// write builds a new one), so they are shared without copying until handed
// to a caller.
type nodeEntry struct {
	node Node
	pos  []int64 // pos[i]: node.Subscriptions[i]'s stored position
}

type nodeSet struct {
	mu sync.RWMutex
	m  map[string]*nodeEntry
}

func (ns *nodeSet) get(name string) *nodeEntry {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.m[name]
}

// sorted returns the entries with w's own writes (nil: none) laid over them,
// by name.
func (ns *nodeSet) sorted(over map[string]*nodeEntry) []*nodeEntry {
	ns.mu.RLock()
	all := make(map[string]*nodeEntry, len(ns.m))
	for k, e := range ns.m {
		all[k] = e
	}
	ns.mu.RUnlock()
	for k, e := range over {
		if e == nil {
			delete(all, k)
		} else {
			all[k] = e
		}
	}
	out := make([]*nodeEntry, 0, len(all))
	for _, e := range all {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Name < out[j].node.Name })
	return out
}

// clone copies a record so callers may change it freely. StartTime
// pointers are shared: nothing writes through them.
func (n Node) clone() Node {
	n.Subscriptions = slices.Clone(n.Subscriptions)
	return n
}

func sameSubscription(a, b Subscription) bool {
	if a.StartTime == nil || b.StartTime == nil {
		if a.StartTime != b.StartTime {
			return false
		}
	} else if !a.StartTime.Equal(*b.StartTime) {
		return false
	}
	a.StartTime, b.StartTime = nil, nil
	return a == b
}

// nodeView is the record as w sees it: its own write, else the committed one.
func (w *wtxn) nodeView(name string) *nodeEntry {
	if e, ok := w.nodes[name]; ok {
		return e
	}
	return w.store.nodes.get(name)
}

// getNode reads a record in w (a copy). ok is false when there is none.
func (w *wtxn) getNode(name string) (Node, bool) {
	if e := w.nodeView(name); e != nil {
		return e.node.clone(), true
	}
	return Node{}, false
}

// putNode writes a record: its own key when new or when Added changed, and
// only the subscriptions that are new, changed or out of order.
func (w *wtxn) putNode(n Node) error {
	prev := w.nodeView(n.Name)
	var prevSubs []Subscription
	var prevPos []int64
	if prev != nil {
		prevSubs, prevPos = prev.node.Subscriptions, prev.pos
	}
	// The common change keeps the record's tables where they were (a flag
	// flipped, tables appended): compare in place, and index only when the
	// order changed or tables were removed.
	same := 0
	for same < len(n.Subscriptions) && same < len(prevSubs) && n.Subscriptions[same].Key() == prevSubs[same].Key() {
		same++
	}
	subs := n.Subscriptions
	if same < len(n.Subscriptions) {
		// One subscription per table: a later one replaces an earlier one.
		subs = slices.Clone(n.Subscriptions[:same])
		at := make(map[TableKey]int, len(n.Subscriptions))
		for i, s := range subs {
			at[s.Key()] = i
		}
		for _, s := range n.Subscriptions[same:] {
			if i, ok := at[s.Key()]; ok {
				subs[i] = s
				continue
			}
			at[s.Key()] = len(subs)
			subs = append(subs, s)
		}
	}
	n.Subscriptions = subs
	if prev == nil || !prev.node.Added.Equal(n.Added) {
		if err := setJSON(w, prefixNode+n.Name, nodeMeta{Name: n.Name, Added: n.Added}); err != nil {
			return err
		}
	}
	e := &nodeEntry{node: n.clone(), pos: make([]int64, len(subs))}
	next := int64(0)
	if l := len(prevPos); l > 0 {
		next = prevPos[l-1] + 1
	}
	write := func(i int, p int64) error {
		e.pos[i] = p
		return setJSON(w, subKey(n.Name, subs[i].Key()), subRecord{Subscription: subs[i], Pos: p})
	}
	// The kept prefix: same tables, same positions.
	for i := 0; i < same; i++ {
		e.pos[i] = prevPos[i]
		if !sameSubscription(prevSubs[i], subs[i]) {
			if err := write(i, prevPos[i]); err != nil {
				return err
			}
		}
	}
	// The rest: a table keeps its position while positions still ascend,
	// else it is written at a new one; tables no longer there are deleted.
	old := make(map[TableKey]int, len(prevSubs)-same)
	for j := same; j < len(prevSubs); j++ {
		old[prevSubs[j].Key()] = j
	}
	last := int64(-1)
	if same > 0 {
		last = prevPos[same-1]
	}
	for i := same; i < len(subs); i++ {
		s := subs[i]
		j, had := old[s.Key()]
		delete(old, s.Key())
		if had && prevPos[j] > last {
			last = prevPos[j]
			e.pos[i] = last
			if !sameSubscription(prevSubs[j], s) {
				if err := write(i, last); err != nil {
					return err
				}
			}
			continue
		}
		last = max(next, last+1)
		next = last + 1
		if err := write(i, last); err != nil {
			return err
		}
	}
	for k := range old {
		if err := w.Delete([]byte(subKey(n.Name, k))); err != nil {
			return err
		}
	}
	w.nodes[n.Name] = e
	return nil
}

// deleteNode deletes a record and its subscriptions.
func (w *wtxn) deleteNode(name string) error {
	if err := w.Delete([]byte(prefixNode + name)); err != nil {
		return err
	}
	if prev := w.nodeView(name); prev != nil {
		for _, s := range prev.node.Subscriptions {
			if err := w.Delete([]byte(subKey(name, s.Key()))); err != nil {
				return err
			}
		}
	}
	w.nodes[name] = nil
	return nil
}

// learnNodes files the records a commit just wrote. Only the committer
// calls it, right after the commit.
func (s *Store) learnNodes(written map[string]*nodeEntry) {
	if len(written) == 0 {
		return
	}
	s.nodes.mu.Lock()
	defer s.nodes.mu.Unlock()
	for name, e := range written {
		if e == nil {
			delete(s.nodes.m, name)
		} else {
			s.nodes.m[name] = e
		}
	}
}

// loadNodes reads every record into memory at Open, first moving the
// subscriptions of records in the old layout (inline) to keys of their own.
func (s *Store) loadNodes() error {
	metas := map[string]nodeMeta{}
	subs := map[string][]subRecord{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte(prefixNode)})
		for it.Rewind(); it.Valid(); it.Next() {
			var m nodeMeta
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &m) }); err != nil {
				it.Close()
				return fmt.Errorf("decode %s: %w", it.Item().Key(), err)
			}
			metas[m.Name] = m
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte(prefixSub)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := string(it.Item().Key())
			name, _, ok := strings.Cut(key[len(prefixSub):], "\x00")
			if !ok {
				return fmt.Errorf("bad subscription key %q", key)
			}
			var r subRecord
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &r) }); err != nil {
				return fmt.Errorf("decode %s: %w", key, err)
			}
			subs[name] = append(subs[name], r)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load node records: %w", err)
	}
	var migrate []nodeMeta
	for _, m := range metas {
		if len(m.Subscriptions) > 0 {
			migrate = append(migrate, m)
		}
	}
	if len(migrate) > 0 {
		if err := s.migrateNodes(migrate); err != nil {
			return err
		}
		for _, m := range migrate {
			subs[m.Name] = nil
			for i, sub := range m.Subscriptions {
				subs[m.Name] = append(subs[m.Name], subRecord{Subscription: sub, Pos: int64(i)})
			}
		}
	}
	s.nodes.m = make(map[string]*nodeEntry, len(metas))
	for name, m := range metas {
		rs := subs[name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].Pos < rs[j].Pos })
		e := &nodeEntry{node: Node{Name: name, Added: m.Added}, pos: make([]int64, 0, len(rs))}
		for _, r := range rs {
			e.node.Subscriptions = append(e.node.Subscriptions, r.Subscription)
			e.pos = append(e.pos, r.Pos)
		}
		s.nodes.m[name] = e
	}
	return nil
}

// migrateNodes rewrites records of the old layout in one synced
// transaction: subscriptions to their own keys, in order.
func (s *Store) migrateNodes(old []nodeMeta) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, m := range old {
			for i, sub := range m.Subscriptions {
				b, err := json.Marshal(subRecord{Subscription: sub, Pos: int64(i)})
				if err != nil {
					return err
				}
				if err := txn.Set([]byte(subKey(m.Name, sub.Key())), b); err != nil {
					return err
				}
			}
			b, err := json.Marshal(nodeMeta{Name: m.Name, Added: m.Added})
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(prefixNode+m.Name), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.db.Sync()
	}
	if err != nil {
		return fmt.Errorf("move node records to per-subscription keys: %w", err)
	}
	return nil
}
