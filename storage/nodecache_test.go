package storage

import (
	"sync"
	"testing"
)

func TestNodeRecordsReadThroughTheCacheStayCurrentAndPrivate(t *testing.T) {
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
				n.Subscriptions = append(n.Subscriptions, Subscription{Database: "data", Table: "t"})
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
