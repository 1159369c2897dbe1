package topology

import (
	"testing"

	"github.com/clusterd/clusterd/storage"
)

func TestPlanReanchorsGroupsAFloorHasPassed(t *testing.T) {
	dog := storage.TableKey{Database: "data", Table: "dog"}
	cat := storage.TableKey{Database: "data", Table: "cat"}
	group := sourceGroup{Peer: "b", ID: "g1", Tables: []storage.TableKey{dog, cat}, StartSeq: 10}
	for _, c := range []struct {
		name       string
		floor      uint64
		reanchored bool
	}{
		{"no floor", 0, false},
		{"floor before the group's start", 9, false},
		{"floor at the group's start", 10, true},
		{"floor past the group's start", 42, true},
	} {
		want := map[string]map[storage.TableKey]wanted{"b": {dog: {Floor: c.floor}, cat: {}}}
		p := planReplication([]sourceGroup{group}, want, nil)
		if got := len(p.Drop) == 1 && len(p.Shrunk) == 1 && len(p.Shrunk[0].Remain) == 2; got != c.reanchored {
			t.Errorf("%s: re-anchored %v, want %v (plan %+v)", c.name, got, c.reanchored, p)
		}
		if c.reanchored == (len(p.Keep) == 1) {
			t.Errorf("%s: kept %d groups", c.name, len(p.Keep))
		}
		if len(p.Fresh) != 0 {
			t.Errorf("%s: fresh groups %v: the group's tables stay covered", c.name, p.Fresh)
		}
	}
}
