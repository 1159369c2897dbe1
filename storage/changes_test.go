package storage

import (
	"sync"
	"testing"
	"time"
)

// The store announces, after the sync, what each commit changed: routes,
// the state the replication worker plans from, and nothing for its own
// bookkeeping or for an update that wrote nothing.
func TestCommitsAnnounceWhatTheyChanged(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu  sync.Mutex
		got []Change
	)
	s.OnChange(func(c Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	take := func() []Change {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}

	if _, err := s.UpdateRoutes(func(r *Routes) error {
		r.Hub = append(r.Hub, Route{Host: "127.0.0.1", Port: 9932})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Announced before the writer is answered: no wait needed.
	if c := take(); len(c) != 1 || c[0] != RoutesChanged {
		t.Fatalf("routes commit announced %v, want [RoutesChanged]", c)
	}
	if _, err := s.PutTables([]Table{{TableKey: TableKey{Database: "dev", Table: "dog"}, Created: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if c := take(); len(c) != 1 || c[0] != NodesChanged {
		t.Fatalf("table commit announced %v, want [NodesChanged]", c)
	}
	if err := s.SetMeta("k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRoutes(func(*Routes) error { return ErrNoChange }); err != nil {
		t.Fatal(err)
	}
	if c := take(); len(c) != 0 {
		t.Fatalf("bookkeeping and a no-op announced %v, want nothing", c)
	}
}
