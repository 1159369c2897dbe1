package topology

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
)

func tk(t string) storage.TableKey { return storage.TableKey{Database: "data", Table: t} }

func keys(ts ...string) []storage.TableKey {
	var out []storage.TableKey
	for _, t := range ts {
		out = append(out, tk(t))
	}
	return out
}

func TestPlanStep(t *testing.T) {
	now := time.Now()
	w := func(tables ...string) map[storage.TableKey]wanted {
		m := map[storage.TableKey]wanted{}
		for _, x := range tables {
			m[tk(x)] = wanted{Start: now}
		}
		return m
	}
	main := lane{Peer: "b", Name: "repl_a_1", Main: true, Shards: 1, Tables: keys("x", "y")}
	catch := lane{Peer: "b", Name: "repl_a_2", Shards: 1, Tables: keys("z")}
	lanes := func(ls ...lane) map[string][]lane { return map[string][]lane{"b": ls} }
	cases := []struct {
		name    string
		lanes   map[string][]lane
		want    map[string]map[storage.TableKey]wanted
		foreign bool
		kind    stepKind
		check   func(t *testing.T, p passPlan)
	}{
		{"nothing", nil, nil, false, stepNone, nil},
		{"new peer: place its tables", nil, map[string]map[storage.TableKey]wanted{"b": w("y", "x")}, false, stepPlace, func(t *testing.T, p passPlan) {
			if !reflect.DeepEqual(p.Place["b"], keys("x", "y")) {
				t.Fatalf("place %v", p.Place)
			}
		}},
		{"converged", lanes(main), map[string]map[storage.TableKey]wanted{"b": w("x", "y")}, false, stepNone, nil},
		{"table added: placed", lanes(main), map[string]map[storage.TableKey]wanted{"b": w("x", "y", "z")}, false, stepPlace, func(t *testing.T, p passPlan) {
			if !reflect.DeepEqual(p.Place["b"], keys("z")) {
				t.Fatalf("place %v", p.Place)
			}
		}},
		{"table removed: trimmed", lanes(main), map[string]map[storage.TableKey]wanted{"b": w("x")}, false, stepTrim, func(t *testing.T, p passPlan) {
			if len(p.Trim) != 1 || !reflect.DeepEqual(p.Trim[0].Remove, keys("y")) {
				t.Fatalf("trim %+v", p.Trim)
			}
		}},
		{"peer removed: lanes dropped", lanes(main, catch), nil, false, stepDrop, func(t *testing.T, p passPlan) {
			if len(p.Drop) != 2 {
				t.Fatalf("drop %+v", p.Drop)
			}
		}},
		{"lost lane dropped first", lanes(lane{Peer: "b", Name: "repl_a_1", Lost: true}), map[string]map[storage.TableKey]wanted{"b": w("x")}, false, stepDrop, nil},
		{"foreign source removed", nil, nil, true, stepDrop, nil},
		{"drained catch-up lane dropped", lanes(main, lane{Peer: "b", Name: "repl_a_2"}), map[string]map[storage.TableKey]wanted{"b": w("x", "y")}, false, stepDrop, nil},
		{"re-source: out of its lane, then purged", lanes(main), map[string]map[storage.TableKey]wanted{"b": {tk("x"): {Start: now}, tk("y"): {Start: now, Resource: true}}}, false, stepTrim, nil},
		{"re-source after the lane let go", lanes(lane{Peer: "b", Name: "repl_a_1", Main: true, Tables: keys("x")}), map[string]map[storage.TableKey]wanted{"b": {tk("x"): {Start: now}, tk("y"): {Start: now, Resource: true}}}, false, stepResource, func(t *testing.T, p passPlan) {
			if !reflect.DeepEqual(p.Resource["b"], keys("y")) || p.Place != nil {
				t.Fatalf("resource %v place %v", p.Resource, p.Place)
			}
		}},
		{"catch-up lane merges", lanes(main, catch), map[string]map[storage.TableKey]wanted{"b": w("x", "y", "z")}, false, stepMerge, func(t *testing.T, p passPlan) {
			if len(p.Merge) != 1 || p.Merge[0].Name != catch.Name {
				t.Fatalf("merge %+v", p.Merge)
			}
		}},
		{"a table in two lanes stays in the main one", lanes(catch, lane{Peer: "b", Name: "repl_a_1", Main: true, Tables: keys("z")}), map[string]map[storage.TableKey]wanted{"b": w("z")}, false, stepTrim, func(t *testing.T, p passPlan) {
			if len(p.Trim) != 1 || p.Trim[0].Lane.Name != catch.Name {
				t.Fatalf("trim %+v", p.Trim)
			}
		}},
		{"a lane grown past its bound splits", lanes(lane{Peer: "b", Name: "repl_a_1", Main: true, Shards: 1, Tables: manyKeys(MaxLaneTables + 1)}),
			map[string]map[storage.TableKey]wanted{"b": wantAll(manyKeys(MaxLaneTables+1), now)}, false, stepSplit, func(t *testing.T, p passPlan) {
				if len(p.Split) != 1 || p.Shards["b"] != 2 {
					t.Fatalf("split %+v into %v", p.Split, p.Shards)
				}
			}},
		{"a full lane of a peer that needs no more lanes stays", lanes(lane{Peer: "b", Name: "repl_a_1", Main: true, Shards: 2, Tables: manyKeys(MaxLaneTables + 1)}),
			map[string]map[storage.TableKey]wanted{"b": wantAll(manyKeys(MaxLaneTables+1), now)}, false, stepNone, nil},
		{"unreachable origin: left alone", lanes(lane{Peer: "b", Name: "repl_a_1", Unknown: true}), map[string]map[storage.TableKey]wanted{"b": w("x", "q")}, false, stepNone, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planStep(c.lanes, c.want, c.foreign, nil)
			if p.Kind != c.kind {
				t.Fatalf("step %v, want %v (plan %+v)", p.Kind, c.kind, p)
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func manyKeys(n int) []storage.TableKey {
	var out []storage.TableKey
	for i := 0; i < n; i++ {
		out = append(out, storage.TableKey{Database: "data", Table: fmt.Sprintf("t%04d", i)})
	}
	return out
}

func wantAll(ks []storage.TableKey, start time.Time) map[storage.TableKey]wanted {
	m := map[storage.TableKey]wanted{}
	for _, k := range ks {
		m[k] = wanted{Start: start}
	}
	return m
}

func TestPlacement(t *testing.T) {
	for _, c := range []struct {
		name                      string
		imported, floor, startSeq uint64
		want                      uint64
	}{
		{"fresh", 0, 0, 10, 10},
		{"resumes after its import", 20, 0, 10, 21},
		{"a later start wins", 5, 0, 10, 10},
		{"not before its floor", 20, 30, 10, 31},
		{"never 0", 0, 0, 0, 1},
	} {
		if got := tableStart(c.imported, c.floor, c.startSeq); got != c.want {
			t.Errorf("%s: start %d, want %d", c.name, got, c.want)
		}
	}
	start := map[storage.TableKey]uint64{tk("a"): 10, tk("b"): 15, tk("c"): 20}
	got := placementChecks(keys("a", "b", "c"), start, 15)
	want := []rangeCheck{{Table: tk("a"), Lo: 10, Hi: 15}, {Table: tk("c"), Lo: 15, Hi: 20}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("checks %+v, want %+v", got, want)
	}
	if !passes(rangeCheck{Lo: 10, Hi: 15}, 9) || passes(rangeCheck{Lo: 10, Hi: 15}, 10) || !passes(rangeCheck{Lo: 10, Hi: 15}, 0) {
		t.Fatal("passes: a message at or after Lo (below Hi) must fail the check")
	}
	starts, groups := groupByStart(keys("a", "b", "c", "d"), map[storage.TableKey]uint64{tk("a"): 7, tk("b"): 3, tk("c"): 7, tk("d"): 3})
	if !reflect.DeepEqual(starts, []uint64{3, 7}) || !reflect.DeepEqual(groups[7], keys("a", "c")) {
		t.Fatalf("groups %v %v", starts, groups)
	}
}

func TestLaneCodec(t *testing.T) {
	for _, sub := range []string{"a", "node_1", "we/ird", `back\slash`, "~tilde"} {
		name := laneName(sub, "abc")
		if got, ok := parseLaneName(name); !ok || got != sub {
			t.Errorf("%q: name %q reads back as %q %v", sub, name, got, ok)
		}
		l := lane{Peer: "origin", Name: name}
		back, ok := parseLaneSource(l.source(), sub)
		if !ok || back.Peer != "origin" || back.Name != name {
			t.Errorf("%q: source reads back as %+v %v", sub, back, ok)
		}
		if _, ok := parseLaneSource(l.source(), "someone-else"); ok {
			t.Errorf("%q: another node's lane taken for ours", sub)
		}
	}
	for _, bad := range []string{"repl_", "repl_a", "repl__x", "other_a_1"} {
		if _, ok := parseLaneName(bad); ok {
			t.Errorf("%q parsed as a lane name", bad)
		}
	}
	if _, ok := parseLaneSource(&jetstream.StreamSource{Name: "other"}, "a"); ok {
		t.Fatal("a source clusterd did not make was taken for a lane")
	}
	if k, o, ok := ParseSubject(OriginSubject(tk("dog"), "n1")); !ok || k != tk("dog") || o != "n1" {
		t.Fatal("subject round trip")
	}
	for _, bad := range []string{"txn.a.b", "ops.a.b.c", "txn..b.c", laneMarker} {
		if _, _, ok := ParseSubject(bad); ok {
			t.Errorf("%q parsed as a transaction subject", bad)
		}
	}
	if sourceSeq("txn:abcd 17 txn.data.x.b txn.data.x.b txn.data.x.b") != 17 || sourceSeq("") != 0 {
		t.Fatal("sourceSeq")
	}
	var l lane
	cfg := lane{Peer: "o", Name: "repl_a_1", Main: true, Shard: 2, Shards: 4, Tables: keys("x")}.consumerConfig("a", 5)
	ci := &jetstream.ConsumerInfo{Config: cfg, Delivered: jetstream.SequenceInfo{Stream: 41}}
	l.Peer = "o"
	l.readConsumer(ci)
	if !l.Main || l.Shard != 2 || l.Shards != 4 || !reflect.DeepEqual(l.Tables, keys("x")) || l.Next != 42 {
		t.Fatalf("consumer reads back as %+v", l)
	}
	empty := lane{Peer: "o"}.consumerConfig("a", 0)
	if !reflect.DeepEqual(empty.FilterSubjects, []string{laneMarker}) || empty.OptStartSeq != 1 {
		t.Fatalf("an empty lane filters %v from %d", empty.FilterSubjects, empty.OptStartSeq)
	}
}

func TestLaneCount(t *testing.T) {
	for n, want := range map[int]int{0: 1, 1: 1, MaxLaneTables: 1, MaxLaneTables + 1: 2, 1000: 4, 2000: 8} {
		if got := LaneCount(n); got != want {
			t.Errorf("LaneCount(%d) = %d, want %d", n, got, want)
		}
	}
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		s := ShardOf(tk(string(rune('a'+i%26))+string(rune('a'+i/26))), 4)
		if s < 0 || s >= 4 {
			t.Fatalf("shard %d", s)
		}
		seen[s] = true
	}
	if len(seen) != 4 {
		t.Fatalf("200 tables fell in shards %v", seen)
	}
}
