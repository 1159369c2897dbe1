package storage

import (
	"errors"
	"reflect"
	"testing"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoutesPersistAndNoChangeWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	want := Routes{Hub: []Route{{Host: "h", Port: 1}}, Leaf: []Route{{Host: "l", Port: 2}}}
	if _, err := s.UpdateRoutes(func(r *Routes) error { *r = want; return nil }); err != nil {
		t.Fatal(err)
	}
	if s.Commits() != 1 {
		t.Fatalf("commits %d", s.Commits())
	}
	if _, err := s.UpdateRoutes(func(r *Routes) error { return ErrNoChange }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateRoutes(func(r *Routes) error { r.Hub = nil; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update error: %v", err)
	}
	if s.Commits() != 1 {
		t.Fatalf("no-change and failed updates committed: %d", s.Commits())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	got, err := s.Routes()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
}

func TestSeedRoutesOnlyOnce(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	first := Routes{Hub: []Route{{Host: "seed", Port: 9932}}}
	if seeded, err := s.SeedRoutes(first); err != nil || !seeded {
		t.Fatalf("first seed: %v %v", seeded, err)
	}
	// An operation empties the routes; a later start must not re-seed them.
	if _, err := s.UpdateRoutes(func(r *Routes) error { r.Hub = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	before := s.Commits()
	if seeded, err := s.SeedRoutes(first); err != nil || seeded {
		t.Fatalf("second seed: %v %v", seeded, err)
	}
	if s.Commits() != before {
		t.Fatal("a refused seed wrote")
	}
	if r, _ := s.Routes(); len(r.Hub) != 0 {
		t.Fatalf("re-seeded: %+v", r)
	}
}

// TestRoutesReadsFollowEveryChange: reads are served from a cache, which a
// change must replace and a caller's edits must not reach.
func TestRoutesReadsFollowEveryChange(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	for i := 1; i <= 3; i++ {
		if _, err := s.Routes(); err != nil { // fills the cache
			t.Fatal(err)
		}
		want := Routes{Hub: []Route{{Host: "h", Port: i}}, Leaf: []Route{}}
		if _, err := s.UpdateRoutes(func(r *Routes) error { *r = want; return nil }); err != nil {
			t.Fatal(err)
		}
		got, err := s.Routes()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("after change %d: %+v %v, want %+v", i, got, err, want)
		}
		got.Hub[0].Port = 99
		if again, _ := s.Routes(); again.Hub[0].Port != i {
			t.Fatalf("a caller's edit reached the stored routes: %+v", again)
		}
	}
}
