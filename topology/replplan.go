package topology

import (
	"sort"
	"time"

	"github.com/clusterd/clusterd/storage"
)

// wanted is a table a peer's transactions must flow into this node for.
type wanted struct {
	Start    time.Time
	Epoch    int64
	Resource bool // re-source from Start, dropping what was imported
	// Floor is the import floor (see storage.RaiseImportFloor): the peer's
	// sequences up to it were received here, though a purge may have
	// removed them. A lane never carries a table from before its floor.
	Floor uint64
}

// stepKind is the one kind of change a reconcile step makes.
type stepKind int

const (
	stepNone     stepKind = iota
	stepDrop              // remove sources: lost lanes, peers no longer wanted, drained catch-up lanes, foreign sources
	stepTrim              // filter updates taking tables out of lanes
	stepResource          // purge tables re-sourced from a new start time
	stepPlace             // put tables carried by no lane into one (join, new lane, or catch-up lane)
	stepMerge             // join catch-up lanes into their main lane
	stepSplit             // split main lanes grown past MaxLaneTables
)

func (k stepKind) String() string {
	return [...]string{"none", "drop", "trim", "resource", "place", "merge", "split"}[k]
}

// laneTrim is a lane losing tables.
type laneTrim struct {
	Lane   lane
	Remove []storage.TableKey
}

// passPlan is the next step of a pass: the first kind of change that has
// work, and that work.
type passPlan struct {
	Kind     stepKind
	Drop     []lane
	Foreign  bool
	Trim     []laneTrim
	Resource map[string][]storage.TableKey
	Place    map[string][]storage.TableKey
	Merge    []lane
	Split    []lane // main lanes to split, each into Shards/lane.Shards lanes
	Shards   map[string]int
}

// planStep compares the lanes observed with the tables each peer must
// replicate and returns the first kind of change with work to do. Pure.
// Peers whose origin could not be asked (a lane Unknown) are left as they
// are, except that lanes of peers no longer wanted are dropped (that needs
// only this node).
func planStep(lanes map[string][]lane, want map[string]map[storage.TableKey]wanted, foreign bool, mergeDue func(lane) bool) passPlan {
	unknown := map[string]bool{}
	for peer, ls := range lanes {
		for _, l := range ls {
			if l.Unknown {
				unknown[peer] = true
			}
		}
	}
	var p passPlan
	for _, peer := range sortedPeers(lanes) {
		for _, l := range lanes[peer] {
			_, wantedPeer := want[peer]
			switch {
			case !wantedPeer, l.Lost, l.Stalled, !l.Unknown && !l.Main && len(l.Tables) == 0:
				p.Drop = append(p.Drop, l)
			}
		}
	}
	if len(p.Drop) > 0 || foreign {
		p.Kind, p.Foreign = stepDrop, foreign
		return p
	}
	carried := map[string]map[storage.TableKey]bool{}
	for _, peer := range sortedPeers(lanes) {
		if unknown[peer] {
			continue
		}
		carried[peer] = map[storage.TableKey]bool{}
		// Main lanes first: a table in a main lane and a catch-up lane (a
		// merge cut short) stays in the main lane.
		ls := append([]lane{}, lanes[peer]...)
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].Main && !ls[j].Main })
		for _, l := range ls {
			var remove []storage.TableKey
			for _, k := range l.Tables {
				w, ok := want[peer][k]
				if !ok || w.Resource || carried[peer][k] {
					remove = append(remove, k)
					continue
				}
				carried[peer][k] = true
			}
			if len(remove) > 0 {
				p.Trim = append(p.Trim, laneTrim{Lane: l, Remove: remove})
			}
		}
	}
	if len(p.Trim) > 0 {
		p.Kind = stepTrim
		return p
	}
	p.Resource = map[string][]storage.TableKey{}
	p.Place = map[string][]storage.TableKey{}
	for _, peer := range sortedPeers(want) {
		if unknown[peer] {
			continue
		}
		for k, w := range want[peer] {
			switch {
			case carried[peer][k]:
			case w.Resource:
				p.Resource[peer] = append(p.Resource[peer], k)
			default:
				p.Place[peer] = append(p.Place[peer], k)
			}
		}
		sortKeys(p.Resource[peer])
		sortKeys(p.Place[peer])
	}
	if len(p.Resource) > 0 {
		p.Kind, p.Place = stepResource, nil
		return p
	}
	p.Resource = nil
	if len(p.Place) > 0 {
		p.Kind = stepPlace
		return p
	}
	p.Place = nil
	for _, peer := range sortedPeers(lanes) {
		for _, l := range lanes[peer] {
			if !l.Main && !l.Unknown && len(l.Tables) > 0 && (mergeDue == nil || mergeDue(l)) {
				p.Merge = append(p.Merge, l)
			}
		}
	}
	if len(p.Merge) > 0 {
		p.Kind = stepMerge
		return p
	}
	// A peer whose tables outgrew its lanes (tables added after the lanes
	// were made) gets more: each main lane splits into lanes of the new
	// shard count (a multiple of the old one, so a lane's tables only move
	// to lanes of their own).
	p.Shards = map[string]int{}
	for _, peer := range sortedPeers(lanes) {
		if unknown[peer] {
			continue
		}
		k := LaneCount(len(want[peer]))
		for _, l := range lanes[peer] {
			if l.Main && len(l.Tables) > MaxLaneTables && l.Shards > 0 && k > l.Shards && k%l.Shards == 0 {
				p.Split = append(p.Split, l)
				p.Shards[peer] = k
			}
		}
	}
	if len(p.Split) > 0 {
		p.Kind = stepSplit
	} else {
		p.Shards = nil
	}
	return p
}

// lanePlacement is where a table carried by no lane goes: into a lane
// starting at (or flowing at) position P, which delivers the origin's
// messages from P on. A table whose own start R differs from P may still go
// there when the origin holds none of its messages between the two:
// starting earlier would import messages from before its start (or ones it
// already has), starting later would skip some.
type rangeCheck struct {
	Table  storage.TableKey
	Lo, Hi uint64 // the table needs no message in [Lo, Hi)
}

// placementChecks lists the checks that let tables (each starting at
// start[t]) join a lane at p; tables starting exactly at p need none.
func placementChecks(tables []storage.TableKey, start map[storage.TableKey]uint64, p uint64) []rangeCheck {
	var out []rangeCheck
	for _, k := range tables {
		r := start[k]
		if r != p {
			out = append(out, rangeCheck{Table: k, Lo: min(r, p), Hi: max(r, p)})
		}
	}
	return out
}

// passes applies the origin's answers to the checks: last[t][hi] is the
// sequence of the origin's last message of t below hi (0: none).
func passes(c rangeCheck, lastBelowHi uint64) bool { return lastBelowHi < c.Lo }

// tableStart is where a table carried by no lane must start: after what was
// imported or purged (floor) here, and not before its subscription's start.
func tableStart(imported, floor, startSeq uint64) uint64 {
	s := startSeq
	if imported > 0 {
		s = max(s, imported+1)
	}
	if floor > 0 {
		s = max(s, floor+1)
	}
	return max(s, 1)
}

// groupByStart groups tables by their start, in start order.
func groupByStart(tables []storage.TableKey, start map[storage.TableKey]uint64) (starts []uint64, groups map[uint64][]storage.TableKey) {
	groups = map[uint64][]storage.TableKey{}
	for _, k := range tables {
		s := start[k]
		if _, ok := groups[s]; !ok {
			starts = append(starts, s)
		}
		groups[s] = append(groups[s], k)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	return starts, groups
}

// peerShards is the shard count a peer's tables are placed by: that of its
// main lanes, or, before it has any, the count its tables call for.
func peerShards(ls []lane, tables int) int {
	k := 0
	for _, l := range ls {
		if l.Main && !l.Lost && l.Shards > k {
			k = l.Shards
		}
	}
	if k == 0 {
		k = LaneCount(tables)
	}
	return k
}

func sortedPeers[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
