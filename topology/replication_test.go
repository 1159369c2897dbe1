package topology

import (
	"reflect"
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
)

func tk(t string) storage.TableKey { return storage.TableKey{Database: "data", Table: t} }

func TestPlanReplication(t *testing.T) {
	now := time.Now()
	w := func(tables ...string) map[storage.TableKey]wanted {
		m := map[storage.TableKey]wanted{}
		for _, x := range tables {
			m[tk(x)] = wanted{Start: now}
		}
		return m
	}
	g1 := sourceGroup{Peer: "b", ID: "g1", Tables: []storage.TableKey{tk("x"), tk("y")}, StartSeq: 5}
	cases := []struct {
		name    string
		have    []sourceGroup
		want    map[string]map[storage.TableKey]wanted
		stalled map[string]bool
		keep    int
		drop    int
		shrunk  [][]storage.TableKey
		fresh   map[string][]storage.TableKey
	}{
		{"nothing", nil, nil, nil, 0, 0, nil, map[string][]storage.TableKey{}},
		{"new peer", nil, map[string]map[storage.TableKey]wanted{"b": w("y", "x")}, nil, 0, 0, nil,
			map[string][]storage.TableKey{"b": {tk("x"), tk("y")}}},
		{"converged", []sourceGroup{g1}, map[string]map[storage.TableKey]wanted{"b": w("x", "y")}, nil, 1, 0, nil, map[string][]storage.TableKey{}},
		{"table added", []sourceGroup{g1}, map[string]map[storage.TableKey]wanted{"b": w("x", "y", "z")}, nil, 1, 0, nil,
			map[string][]storage.TableKey{"b": {tk("z")}}},
		{"table removed", []sourceGroup{g1}, map[string]map[storage.TableKey]wanted{"b": w("x")}, nil, 0, 1, [][]storage.TableKey{{tk("x")}},
			map[string][]storage.TableKey{}},
		{"peer removed", []sourceGroup{g1}, nil, nil, 0, 1, nil, map[string][]storage.TableKey{}},
		{"stalled restarts whole", []sourceGroup{g1}, map[string]map[storage.TableKey]wanted{"b": w("x", "y")}, map[string]bool{"g1": true}, 0, 1,
			[][]storage.TableKey{{tk("x"), tk("y")}}, map[string][]storage.TableKey{}},
		{"re-source leaves group", []sourceGroup{g1}, map[string]map[storage.TableKey]wanted{"b": {tk("x"): {Start: now}, tk("y"): {Start: now, Resource: true}}}, nil, 0, 1,
			[][]storage.TableKey{{tk("x")}}, map[string][]storage.TableKey{"b": {tk("y")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planReplication(c.have, c.want, c.stalled)
			if len(p.Keep) != c.keep || len(p.Drop) != c.drop {
				t.Fatalf("keep %d drop %d, want %d %d", len(p.Keep), len(p.Drop), c.keep, c.drop)
			}
			var shrunk [][]storage.TableKey
			for _, s := range p.Shrunk {
				shrunk = append(shrunk, s.Remain)
			}
			if !reflect.DeepEqual(shrunk, c.shrunk) {
				t.Fatalf("shrunk %v, want %v", shrunk, c.shrunk)
			}
			if !reflect.DeepEqual(p.Fresh, c.fresh) {
				t.Fatalf("fresh %v, want %v", p.Fresh, c.fresh)
			}
		})
	}
}

func TestSourceRoundTrip(t *testing.T) {
	g := sourceGroup{Peer: "n2", ID: "abc123", Tables: []storage.TableKey{tk("x"), {Database: "db", Table: "y"}}, StartSeq: 42}
	back, ok := parseSource(g.toSource())
	if !ok || !reflect.DeepEqual(back, g) {
		t.Fatalf("round trip: %+v %v, want %+v", back, ok, g)
	}
	if _, ok := parseSource(&jetstreamSourceForeign); ok {
		t.Fatal("a source clusterd did not make was taken for a group")
	}
	if sourceSeq("txn:abcd 17 txn.data.x.b txn.data.x.b txn.data.x.b") != 17 || sourceSeq("") != 0 {
		t.Fatal("sourceSeq")
	}
}

var jetstreamSourceForeign = jetstream.StreamSource{Name: "other"}
