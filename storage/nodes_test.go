package storage

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/dgraph-io/badger/v4"
	"sync"
	"testing"
)

func TestNodeRecordsStayCurrentAndPrivate(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	put := func(subs ...string) {
		t.Helper()
		err := s.Update(func(tx *Tx) error {
			n, _, err := tx.Node("b")
			if err != nil {
				return err
			}
			n.Subscriptions = nil
			for _, tb := range subs {
				n.Subscriptions = append(n.Subscriptions, Subscription{Database: "data", Table: tb, Subscribe: true})
			}
			return tx.PutNode(n)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tables := func(n Node) []string {
		var out []string
		for _, s := range n.Subscriptions {
			out = append(out, s.Table)
		}
		return out
	}
	put("x")
	n, ok, err := s.Node("b")
	if err != nil || !ok || len(n.Subscriptions) != 1 {
		t.Fatalf("node: %v %v %+v", ok, err, n)
	}
	// Changing what a read returned does not change the next read.
	n.Subscriptions[0].Table = "changed"
	if n2, _, _ := s.Node("b"); tables(n2)[0] != "x" {
		t.Fatalf("a caller's change leaked into the cache: %v", tables(n2))
	}
	put("x", "y")
	if n, _, _ := s.Node("b"); len(tables(n)) != 2 {
		t.Fatalf("read after update: %v", tables(n))
	}
	all, _ := s.Nodes()
	if len(all) != 1 || len(tables(all[0])) != 2 {
		t.Fatalf("nodes after update: %+v", all)
	}
	// A transaction (and the batch sharing it) sees its own writes.
	if err := s.Update(func(tx *Tx) error {
		n, _, _ := tx.Node("b")
		n.Subscriptions = n.Subscriptions[:1]
		if err := tx.PutNode(n); err != nil {
			return err
		}
		again, _, _ := tx.Node("b")
		if len(again.Subscriptions) != 1 {
			t.Errorf("the transaction does not see its own write: %v", tables(again))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	release := hold(t, s)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Update(func(tx *Tx) error {
				n, _, err := tx.Node("b")
				if err != nil {
					return err
				}
				n.Subscriptions = append(n.Subscriptions, Subscription{Database: "data", Table: fmt.Sprintf("t%d", i)})
				return tx.PutNode(n)
			})
		}()
	}
	waitQueued(t, s, 10)
	release()
	wg.Wait()
	if n, _, _ := s.Node("b"); len(n.Subscriptions) != 11 {
		t.Fatalf("10 batched appends to one record left %d subscriptions, want 11", len(n.Subscriptions))
	}
	if err := s.Update(func(tx *Tx) error { return tx.DeleteNode("b") }); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Node("b"); ok {
		t.Fatal("deleted record still read")
	}
}

// subs builds subscriptions to tables named by tbs, all subscribed.
func subs(tbs ...string) []Subscription {
	var out []Subscription
	for _, tb := range tbs {
		out = append(out, Subscription{Database: "data", Table: tb, Subscribe: true})
	}
	return out
}

func tableNames(n Node) []string {
	var out []string
	for _, s := range n.Subscriptions {
		out = append(out, s.Table)
	}
	return out
}

// TestNodeRecordsSurviveReopenInOrder: records read back after a reopen as
// they were written — subscriptions in record order through appends,
// removals, changes, a reorder, and a whole-set replace.
func TestNodeRecordsSurviveReopenInOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	added := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []func(n *Node){
		func(n *Node) { n.Added, n.Subscriptions = added, subs("a", "b", "c", "d") },
		func(n *Node) { n.Subscriptions = append(n.Subscriptions[:1], n.Subscriptions[2:]...) }, // drop b
		func(n *Node) { n.Subscriptions[1].Publish, n.Subscriptions[1].StartTime = true, &start },
		func(n *Node) { n.Subscriptions = append(n.Subscriptions, subs("e")...) },
		func(n *Node) { n.Subscriptions[0], n.Subscriptions[3] = n.Subscriptions[3], n.Subscriptions[0] }, // e c d a
	}
	for i, step := range steps {
		if err := s.UpdateNode("peer", func(n *Node, _ bool) (bool, error) { step(n); return true, nil }); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := s.UpdateNode("gone", func(n *Node, _ bool) (bool, error) { n.Subscriptions = subs("x"); return true, nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateNode("gone", func(*Node, bool) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	want, _ := s.Nodes()
	if len(want) != 1 || !reflect.DeepEqual(tableNames(want[0]), []string{"e", "c", "d", "a"}) {
		t.Fatalf("before reopen: %+v", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	got, _ := s.Nodes()
	if fmt.Sprint(got) != fmt.Sprint(want) || !got[0].Added.Equal(added) || !got[0].Subscriptions[1].StartTime.Equal(start) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
	// A whole-set replace, then reopen again.
	if err := s.ReplaceNodes([]Node{{Name: "q", Subscriptions: subs("z", "y")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	got, _ = s.Nodes()
	if len(got) != 1 || got[0].Name != "q" || !reflect.DeepEqual(tableNames(got[0]), []string{"z", "y"}) {
		t.Fatalf("after replace and reopen: %+v", got)
	}
	// Nothing of the replaced records is left on disk.
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSub + "peer\x00")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			t.Errorf("left behind: %q", it.Item().Key())
		}
		return nil
	})
}

// TestChangingOneSubscriptionWritesOneKey: the cost of a change does not grow
// with the number of subscriptions a record holds.
func TestChangingOneSubscriptionWritesOneKey(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	var many []string
	for i := 0; i < 1000; i++ {
		many = append(many, fmt.Sprintf("t%d", i))
	}
	if err := s.UpdateNode("peer", func(n *Node, _ bool) (bool, error) { n.Subscriptions = subs(many...); return true, nil }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(n *Node)
		writes int
	}{
		{"flip one flag", func(n *Node) { n.Subscriptions[500].Publish = true }, 1},
		{"append one", func(n *Node) { n.Subscriptions = append(n.Subscriptions, subs("new")...) }, 1},
		{"remove one", func(n *Node) { n.Subscriptions = append(n.Subscriptions[:10], n.Subscriptions[11:]...) }, 1},
		{"no change", func(*Node) {}, 0},
	} {
		var writes int
		err := s.update(func(w *wtxn) error {
			n, _ := w.getNode("peer")
			c.change(&n)
			err := w.putNode(n)
			writes = w.writes
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if writes != c.writes {
			t.Errorf("%s: %d keys written, want %d", c.name, writes, c.writes)
		}
	}
	n, _, _ := s.Node("peer")
	if len(n.Subscriptions) != 1000 || !n.Subscriptions[499].Publish || n.Subscriptions[999].Table != "new" {
		t.Fatalf("record after the changes: %d subscriptions", len(n.Subscriptions))
	}
}

// TestOldNodeRecordsAreMovedAtOpen: a store written by a clusterd that kept
// subscriptions inline in the node's value opens with the same records, now
// one key per subscription.
func TestOldNodeRecordsAreMovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(BadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	added := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	old, _ := json.Marshal(Node{Name: "b", Added: added, Subscriptions: subs("y", "x")})
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixNode+"b"), old) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second open reads the moved layout
		s := open(t, dir)
		n, ok, _ := s.Node("b")
		if !ok || !n.Added.Equal(added) || !reflect.DeepEqual(tableNames(n), []string{"y", "x"}) {
			t.Fatalf("open %d: %v %+v", i, ok, n)
		}
		var inline int
		_ = s.db.View(func(txn *badger.Txn) error {
			var m nodeMeta
			_, err := getJSON(txn, prefixNode+"b", &m)
			inline = len(m.Subscriptions)
			return err
		})
		if inline != 0 {
			t.Fatalf("open %d: %d subscriptions still inline", i, inline)
		}
		s.Close()
	}
}
