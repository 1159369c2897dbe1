package storage

import "testing"

func TestImportFloorsOnlyRiseAndClear(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dog := TableKey{Database: "data", Table: "dog"}
	odd := TableKey{Database: "d/b", Table: "t\x00x"} // key parts never parsed back
	for _, step := range []struct {
		peer string
		k    TableKey
		seq  uint64
	}{{"a", dog, 10}, {"a", dog, 7}, {"a", dog, 0}, {"b/c", odd, 3}, {"a", dog, 12}} {
		if err := s.RaiseImportFloor(step.peer, step.k, step.seq); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ImportFloors()
	if err != nil {
		t.Fatal(err)
	}
	if got["a"][dog] != 12 || got["b/c"][odd] != 3 || len(got) != 2 {
		t.Fatalf("floors = %v", got)
	}
	if err := s.ClearImportFloor("a", dog); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearImportFloor("a", dog); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ImportFloors()
	if _, ok := got["a"]; ok || got["b/c"][odd] != 3 {
		t.Fatalf("after clear: %v", got)
	}
}
