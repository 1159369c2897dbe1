package topology

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// A source group is one JetStream source on the transaction stream: a peer's
// stream filtered to a set of tables, started at one position. Groups are
// immutable: a table joining a peer's replication gets a new group (its own
// start position); a table leaving shrinks its group, which is recreated at
// exactly the sequence after the last transaction it had imported. A marker
// filter (txn._clusterd.<id>.<peer>, which no transaction uses) gives every
// group a unique identity, so JetStream never resumes a new group from a
// stale position it remembers for an old one with the same filters.
type sourceGroup struct {
	Peer      string
	ID        string
	Tables    []storage.TableKey
	StartSeq  uint64
	StartTime *time.Time
}

const markerDB = "_clusterd"

// ShardCount bounds how many source groups a peer's tables are spread over.
// nats-server checks a source's subject filters against each other on every
// stream update (quadratic in filters per source): 1000 tables in one source
// made each update take seconds; in 16 shards of ~60 filters it takes
// milliseconds, and a change to one table only touches its shard.
const ShardCount = 16

// ShardOf is the shard a table's replication belongs to.
func ShardOf(k storage.TableKey) int {
	h := fnv.New32a()
	h.Write([]byte(k.Database))
	h.Write([]byte{0})
	h.Write([]byte(k.Table))
	return int(h.Sum32() % ShardCount)
}

// ShardsUsed is how many source groups a converged peer with these tables has.
func ShardsUsed(keys []storage.TableKey) int {
	seen := map[int]bool{}
	for _, k := range keys {
		seen[ShardOf(k)] = true
	}
	return len(seen)
}

// shardKey names the (peer, shard) a group belongs to.
func (g sourceGroup) shardKey() string {
	if len(g.Tables) == 0 {
		return g.Peer
	}
	return fmt.Sprintf("%s/%d", g.Peer, ShardOf(g.Tables[0]))
}

func apiPrefix(peer string) string { return "$JS." + peer + ".API" }

func markerSubject(id, peer string) string { return "txn." + markerDB + "." + id + "." + peer }

func newGroupID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// toSource renders a group as a stream source.
func (g sourceGroup) toSource() *jetstream.StreamSource {
	tr := []jetstream.SubjectTransformConfig{{Source: markerSubject(g.ID, g.Peer), Destination: markerSubject(g.ID, g.Peer)}}
	for _, k := range g.Tables {
		s := OriginSubject(k, g.Peer)
		tr = append(tr, jetstream.SubjectTransformConfig{Source: s, Destination: s})
	}
	return &jetstream.StreamSource{
		Name:              TxnStreamName,
		OptStartSeq:       g.StartSeq,
		OptStartTime:      g.StartTime,
		SubjectTransforms: tr,
		External:          &jetstream.ExternalStream{APIPrefix: apiPrefix(g.Peer)},
	}
}

// parseSource reads a group back from a stream source; ok is false for
// sources clusterd did not make.
func parseSource(s *jetstream.StreamSource) (sourceGroup, bool) {
	if s == nil || s.Name != TxnStreamName || s.External == nil {
		return sourceGroup{}, false
	}
	peer, ok := strings.CutPrefix(s.External.APIPrefix, "$JS.")
	if !ok {
		return sourceGroup{}, false
	}
	peer, ok = strings.CutSuffix(peer, ".API")
	if !ok {
		return sourceGroup{}, false
	}
	g := sourceGroup{Peer: peer, StartSeq: s.OptStartSeq, StartTime: s.OptStartTime}
	for _, tr := range s.SubjectTransforms {
		p := strings.Split(tr.Source, ".")
		if len(p) != 4 || p[0] != "txn" || p[3] != peer {
			return sourceGroup{}, false
		}
		if p[1] == markerDB {
			g.ID = p[2]
			continue
		}
		g.Tables = append(g.Tables, storage.TableKey{Database: p[1], Table: p[2]})
	}
	return g, g.ID != ""
}

// wanted is a table a peer's transactions must flow into for.
type wanted struct {
	Start    time.Time
	Epoch    int64
	Resource bool // re-source from Start, dropping what was imported
	// Floor is the import floor (see storage.RaiseImportFloor): the peer's
	// sequences up to it were received here, though a purge may have
	// removed them. A group must start after the floors of its tables.
	Floor uint64
}

// replicationPlan is what a pass must change.
type replicationPlan struct {
	Keep   []sourceGroup                 // untouched
	Drop   []sourceGroup                 // removed (shrunk ones are re-added with Remain)
	Shrunk []shrunkGroup                 // groups that lose tables but keep others
	Fresh  map[string][]storage.TableKey // tables with no group yet, by peer
	Want   map[string]map[storage.TableKey]wanted
}

type shrunkGroup struct {
	Old    sourceGroup
	Remain []storage.TableKey
}

func (p replicationPlan) Empty() bool { return len(p.Drop) == 0 && len(p.Fresh) == 0 }

// planReplication compares the groups on the stream with the tables each peer
// must replicate. Pure.
func planReplication(have []sourceGroup, want map[string]map[storage.TableKey]wanted, stalled map[string]bool) replicationPlan {
	p := replicationPlan{Fresh: map[string][]storage.TableKey{}, Want: want}
	covered := map[string]map[storage.TableKey]bool{}
	for _, g := range have {
		w := want[g.Peer]
		var remain []storage.TableKey
		stale := false // a purge removed what this group would resume from
		for _, k := range g.Tables {
			if x, ok := w[k]; ok && !x.Resource && !covered[g.Peer][k] {
				remain = append(remain, k)
				stale = stale || (x.Floor > 0 && x.Floor >= g.StartSeq)
			}
		}
		if len(remain) == len(g.Tables) && len(remain) > 0 && !stalled[g.ID] && !stale {
			p.Keep = append(p.Keep, g)
		} else {
			p.Drop = append(p.Drop, g)
			if len(remain) > 0 {
				p.Shrunk = append(p.Shrunk, shrunkGroup{Old: g, Remain: remain})
			}
		}
		if covered[g.Peer] == nil {
			covered[g.Peer] = map[storage.TableKey]bool{}
		}
		for _, k := range remain {
			covered[g.Peer][k] = true
		}
	}
	for peer, w := range want {
		for k := range w {
			if !covered[peer][k] {
				p.Fresh[peer] = append(p.Fresh[peer], k)
			}
		}
		sortKeys(p.Fresh[peer])
		if len(p.Fresh[peer]) == 0 {
			delete(p.Fresh, peer)
		}
	}
	return p
}

func sortKeys(ks []storage.TableKey) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
}

// PeerReplication is one peer's replication state, for cluster_status.
type PeerReplication struct {
	Converged bool   `json:"converged"`
	Lag       uint64 `json:"lag"`
	Sources   int    `json:"sources"`
	LastError string `json:"last_error,omitempty"`
}

// ReplicationReconciler converges the transaction stream's sources to the
// subscriptions in storage.
type ReplicationReconciler struct {
	Store  *storage.Store
	Stream *TxnStream
	Log    *zap.Logger
	// Metrics, when set, receives the replication lag per peer that
	// JetStream reports for the sources.
	Metrics *events.Metrics

	mu       sync.Mutex
	status   map[string]PeerReplication
	backlog  int
	lagPeers map[string]bool
	// firstSeen is when each group was first seen on the stream (by ID), so
	// a new group gets time to start before it can be judged stalled.
	firstSeen map[string]time.Time
	// lastMerge is when a peer's groups were last merged (or tried).
	lastMerge map[string]time.Time
	// restarted holds peers that announced a restart: their sources here
	// lost their consumers there and are recreated at once.
	restartedMu sync.Mutex
	restarted   map[string]bool
	// settled is the desired state of the last pass that found nothing to
	// change, and settledAt when that was: a pass woken again before
	// recheckAfter with the same desired state has nothing to do, so it
	// skips asking the server (stream info, ~25% of a busy node's CPU under
	// a stream of operations that change nothing here). Drift is still
	// caught by the periodic resync, which comes later than recheckAfter.
	settled   map[string]map[storage.TableKey]wanted
	settledAt time.Time
}

// recheckAfter is how long a settled pass vouches for the server's state.
const recheckAfter = time.Second

func sameWant(a, b map[string]map[storage.TableKey]wanted) bool {
	if len(a) != len(b) {
		return false
	}
	for peer, wa := range a {
		wb, ok := b[peer]
		if !ok || len(wa) != len(wb) {
			return false
		}
		for k, x := range wa {
			y, ok := wb[k]
			if !ok || !x.Start.Equal(y.Start) || x.Epoch != y.Epoch || x.Resource != y.Resource || x.Floor != y.Floor {
				return false
			}
		}
	}
	return true
}

func (r *ReplicationReconciler) restartPending() bool {
	r.restartedMu.Lock()
	defer r.restartedMu.Unlock()
	return len(r.restarted) > 0
}

// PeerRestarted asks the next pass to recreate every source from peer
// (at their exact resume points) instead of waiting for them to be judged
// stalled.
func (r *ReplicationReconciler) PeerRestarted(peer string) {
	r.restartedMu.Lock()
	defer r.restartedMu.Unlock()
	if r.restarted == nil {
		r.restarted = map[string]bool{}
	}
	r.restarted[peer] = true
}

// mergeInterval spaces merge attempts for one peer.
const mergeInterval = 3 * time.Second

// mergeGroups folds a peer's several groups into one, keeping replication
// cost per peer constant however the tables were added. Groups are stopped,
// their exact resume points R read from what they imported, and the merged
// group starts at M = max R. A group may join only if the peer holds none of
// its tables' transactions in [R, M) — else starting at M would skip them —
// which is checked against the peer; groups that cannot join yet are
// restarted where they were and tried again later.
func (r *ReplicationReconciler) mergeGroups(ctx context.Context, have []sourceGroup) (bool, error) {
	byShard := map[string][]sourceGroup{}
	for _, g := range have {
		byShard[g.shardKey()] = append(byShard[g.shardKey()], g)
	}
	if r.lastMerge == nil {
		r.lastMerge = map[string]time.Time{}
	}
	forgetDeparted(r.lastMerge, byShard)
	var key string
	for k, gs := range byShard {
		if len(gs) > 1 && time.Since(r.lastMerge[k]) > mergeInterval {
			key = k
			break
		}
	}
	if key == "" {
		return false, nil
	}
	r.lastMerge[key] = time.Now()
	groups := byShard[key]
	peer := groups[0].Peer
	var others []sourceGroup
	for _, g := range have {
		if g.shardKey() != key {
			others = append(others, g)
		}
	}
	if err := r.Stream.SetSources(ctx, sources(others)); err != nil {
		return false, err
	}
	resume := make([]uint64, len(groups))
	var m uint64
	for i, g := range groups {
		rg, err := r.resumeGroup(ctx, peer, g.Tables, g.StartSeq)
		if err != nil {
			return true, r.restore(ctx, others, groups, nil, err)
		}
		resume[i] = rg.StartSeq
		m = max(m, rg.StartSeq)
	}
	merged := sourceGroup{Peer: peer, ID: newGroupID(), StartSeq: m}
	var rest []sourceGroup
	for i, g := range groups {
		ok, err := r.noTransactionsBetween(ctx, peer, g.Tables, resume[i], m)
		if err != nil {
			return true, r.restore(ctx, others, groups, resume, err)
		}
		if ok {
			merged.Tables = append(merged.Tables, g.Tables...)
		} else {
			rest = append(rest, sourceGroup{Peer: peer, ID: newGroupID(), Tables: g.Tables, StartSeq: resume[i]})
		}
	}
	sortKeys(merged.Tables)
	all := append(append([]sourceGroup{}, others...), rest...)
	if len(merged.Tables) > 0 {
		all = append(all, merged)
	}
	if err := r.Stream.SetSources(ctx, sources(all)); err != nil {
		return true, err
	}
	r.Log.Info("replication groups merged", zap.String("peer", peer), zap.String("shard", key), zap.Int("groups_before", len(groups)), zap.Int("groups_after", len(rest)+1))
	return true, nil
}

// restore puts a peer's groups back after a failed merge, at their resume
// points when known (else where they started: nothing was read, nothing lost).
func (r *ReplicationReconciler) restore(ctx context.Context, others, groups []sourceGroup, resume []uint64, cause error) error {
	all := append([]sourceGroup{}, others...)
	for i, g := range groups {
		ng := sourceGroup{Peer: g.Peer, ID: newGroupID(), Tables: g.Tables, StartSeq: g.StartSeq}
		if resume != nil {
			ng.StartSeq = resume[i]
		} else if rg, err := r.resumeGroup(ctx, g.Peer, g.Tables, g.StartSeq); err == nil {
			ng.StartSeq = rg.StartSeq
		}
		all = append(all, ng)
	}
	if err := r.Stream.SetSources(ctx, sources(all)); err != nil {
		return fmt.Errorf("restore groups after failed merge (%v): %w", cause, err)
	}
	return fmt.Errorf("merge groups: %w", cause)
}

// noTransactionsBetween says whether the peer holds no transaction of tables
// with a sequence in [from, to).
func (r *ReplicationReconciler) noTransactionsBetween(ctx context.Context, peer string, tables []storage.TableKey, from, to uint64) (bool, error) {
	if from >= to {
		return true, nil
	}
	for _, k := range tables {
		seq, err := r.Stream.PeerNextSeq(ctx, peer, OriginSubject(k, peer), from)
		if err != nil {
			return false, err
		}
		if seq != 0 && seq < to {
			return false, nil
		}
	}
	return true, nil
}

// Stall thresholds: a healthy source hears from its origin every second.
const (
	stallSilence = 3 * time.Second
	stallGrace   = 2 * time.Second
)

// stalledGroups finds groups whose source has not heard from the peer for a
// while: nats-server retries a failed source with growing backoff (tens of
// seconds after a restart) and can stall while reporting no lag; recreating
// the group at its exact resume point gets it flowing at once.
func (r *ReplicationReconciler) stalledGroups(info *jetstream.StreamInfo, have []sourceGroup) map[string]bool {
	now := time.Now()
	if r.firstSeen == nil {
		r.firstSeen = map[string]time.Time{}
	}
	current := map[string]bool{}
	for _, g := range have {
		current[g.ID] = true
		if _, ok := r.firstSeen[g.ID]; !ok {
			r.firstSeen[g.ID] = now
		}
	}
	for id := range r.firstSeen {
		if !current[id] {
			delete(r.firstSeen, id)
		}
	}
	stalled := map[string]bool{}
	r.restartedMu.Lock()
	for _, g := range have {
		if r.restarted[g.Peer] {
			stalled[g.ID] = true
		}
	}
	r.restarted = nil
	r.restartedMu.Unlock()
	for _, si := range info.Sources {
		id := ""
		for _, tr := range si.SubjectTransforms {
			if p := strings.Split(tr.Source, "."); len(p) == 4 && p[1] == markerDB {
				id = p[2]
			}
		}
		seen, ok := r.firstSeen[id]
		if !ok || now.Sub(seen) < stallGrace {
			continue
		}
		if si.Active < 0 || si.Active > stallSilence {
			stalled[id] = true
		}
	}
	return stalled
}

// Status returns the per-peer replication state observed by the last pass.
func (r *ReplicationReconciler) Status() map[string]PeerReplication {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]PeerReplication, len(r.status))
	for k, v := range r.status {
		out[k] = v
	}
	return out
}

func (r *ReplicationReconciler) desired() (map[string]map[storage.TableKey]wanted, error) {
	nodes, err := r.Store.Nodes()
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	floors, err := r.Store.ImportFloors()
	if err != nil {
		return nil, fmt.Errorf("load import floors: %w", err)
	}
	out := map[string]map[storage.TableKey]wanted{}
	for _, n := range nodes {
		for _, s := range n.Subscriptions {
			if !s.Subscribe || !validName(n.Name, s.Key()) {
				continue
			}
			w := wanted{Start: n.Added, Epoch: s.Epoch, Floor: floors[n.Name][s.Key()]}
			if s.StartTime != nil {
				w.Start = *s.StartTime
			}
			if s.Epoch != 0 {
				applied, err := r.Store.AppliedEpoch(n.Name, s.Key())
				if err != nil {
					return nil, err
				}
				w.Resource = s.Epoch > applied
			}
			if out[n.Name] == nil {
				out[n.Name] = map[storage.TableKey]wanted{}
			}
			out[n.Name][s.Key()] = w
		}
	}
	return out, nil
}

// Reconcile implements ReconcileFunc.
func (r *ReplicationReconciler) Reconcile(ctx context.Context) (bool, error) {
	want, err := r.desired()
	if err != nil {
		return false, err
	}
	if r.settled != nil && time.Since(r.settledAt) < recheckAfter && sameWant(want, r.settled) && !r.restartPending() {
		return false, nil
	}
	r.settled = nil
	info, err := r.Stream.Ensure(ctx)
	if err != nil {
		return false, err
	}
	var have []sourceGroup
	foreign := false
	for _, s := range info.Config.Sources {
		if g, ok := parseSource(s); ok {
			have = append(have, g)
		} else {
			foreign = true // not ours: removed below
		}
	}
	stalled := r.stalledGroups(info, have)
	plan := planReplication(have, want, stalled)
	if plan.Empty() && !foreign {
		if merged, err := r.mergeGroups(ctx, have); merged || err != nil {
			return merged, err
		}
		r.observe(info, want, nil)
		r.settled, r.settledAt = want, time.Now()
		return false, nil
	}
	// Stop changed groups first, so the positions read next are final.
	if len(plan.Drop) > 0 || foreign {
		if err := r.Stream.SetSources(ctx, sources(plan.Keep)); err != nil {
			return false, err
		}
	}
	// Work out the new groups peer by peer, so one unreachable peer does not
	// hold up the others; its tables stay unsourced and the pass is retried.
	var added []sourceGroup
	peerErrs := map[string]error{}
	for _, sg := range plan.Shrunk {
		g, err := r.resumeGroup(ctx, sg.Old.Peer, sg.Remain, sg.Old.StartSeq)
		if err != nil {
			peerErrs[sg.Old.Peer] = err
			continue
		}
		added = append(added, g)
	}
	type resourcedTable struct {
		peer string
		k    storage.TableKey
		e    int64
	}
	var resourced []resourcedTable
	for peer, tables := range plan.Fresh {
		if peerErrs[peer] != nil {
			continue
		}
		gs, rs, err := r.freshGroups(ctx, peer, tables, want[peer])
		if err != nil {
			peerErrs[peer] = err
			continue
		}
		added = append(added, gs...)
		for _, k := range rs {
			resourced = append(resourced, resourcedTable{peer, k, want[peer][k].Epoch})
		}
	}
	all, err := r.setSourcesIsolating(ctx, plan.Keep, added, peerErrs)
	if err != nil {
		return true, err
	}
	for _, x := range resourced {
		if err := r.Store.SetAppliedEpoch(x.peer, x.k, x.e); err != nil {
			return true, err
		}
	}
	r.Log.Info("replication sources updated", zap.Int("groups", len(all)), zap.Int("added", len(added)),
		zap.Int("dropped", len(plan.Drop)), zap.Int("restarted_stalled", len(stalled)), zap.Strings("stalled_peers", stalledPeers(have, stalled)))
	if info, err := r.Stream.Info(ctx); err == nil {
		r.observe(info, want, peerErrs)
	}
	if len(peerErrs) > 0 {
		var msgs []string
		for p, err := range peerErrs {
			msgs = append(msgs, p+": "+err.Error())
		}
		sort.Strings(msgs)
		return true, fmt.Errorf("replication not converged for %s", strings.Join(msgs, "; "))
	}
	return true, nil
}

// freshGroups makes groups for tables that have none: a table re-sourced for
// a new start time is purged of the peer's transactions and starts at that
// time; a table that has imported before resumes right after its last
// import; any other starts at its start time. Tables with the same start
// share a group.
func (r *ReplicationReconciler) freshGroups(ctx context.Context, peer string, tables []storage.TableKey, want map[storage.TableKey]wanted) (groups []sourceGroup, resourced []storage.TableKey, err error) {
	// One look at the newest import from this peer spares a lookup per table
	// when nothing was ever imported (every new setup).
	anyImported, err := r.Stream.LastImportedSeq(ctx, "txn.*.*."+peer)
	if err != nil {
		return nil, nil, err
	}
	type groupKey struct {
		shard int
		seq   uint64
	}
	bySeq := map[groupKey]int{}
	seqAt := map[time.Time]uint64{}
	var lastImported map[string]uint64
	if anyImported > 0 {
		subjects := make([]string, len(tables))
		for i, k := range tables {
			subjects[i] = OriginSubject(k, peer)
		}
		if lastImported, err = r.Stream.LastImportedSeqs(ctx, subjects); err != nil {
			return nil, nil, err
		}
	}
	for _, k := range tables {
		w := want[k]
		var seq uint64
		if w.Resource {
			if err := r.Stream.Purge(ctx, jetstream.WithPurgeSubject(OriginSubject(k, peer))); err != nil {
				return nil, nil, fmt.Errorf("purge %s before re-sourcing: %w", OriginSubject(k, peer), err)
			}
			// Starting over from the start time: what was received before
			// no longer bounds where the new group starts.
			if err := r.Store.ClearImportFloor(peer, k); err != nil {
				return nil, nil, err
			}
			resourced = append(resourced, k)
		} else if last := max(lastImported[OriginSubject(k, peer)], w.Floor); last > 0 {
			seq = last + 1
		}
		if seq == 0 {
			var ok bool
			if seq, ok = seqAt[w.Start]; !ok {
				if seq, err = r.Stream.PeerSeqAt(ctx, peer, w.Start); err != nil {
					return nil, nil, fmt.Errorf("find where to start sourcing %s: %w", k, err)
				}
				seqAt[w.Start] = seq
			}
		}
		gk := groupKey{ShardOf(k), seq}
		if i, ok := bySeq[gk]; ok {
			groups[i].Tables = append(groups[i].Tables, k)
			continue
		}
		bySeq[gk] = len(groups)
		groups = append(groups, sourceGroup{Peer: peer, ID: newGroupID(), Tables: []storage.TableKey{k}, StartSeq: seq})
	}
	return groups, resourced, nil
}

// resumeGroup builds a group for tables that were replicating and must go on
// exactly after the last transaction imported (or purged after import, see
// wanted.Floor) for any of them; with nothing imported yet, from the old start.
func (r *ReplicationReconciler) resumeGroup(ctx context.Context, peer string, tables []storage.TableKey, oldSeq uint64) (sourceGroup, error) {
	g := sourceGroup{Peer: peer, ID: newGroupID(), Tables: tables}
	subjects := make([]string, len(tables))
	for i, k := range tables {
		subjects[i] = OriginSubject(k, peer)
	}
	seqs, err := r.Stream.LastImportedSeqs(ctx, subjects)
	if err != nil {
		return g, err
	}
	floors, err := r.Store.ImportFloors()
	if err != nil {
		return g, fmt.Errorf("load import floors: %w", err)
	}
	var last uint64
	for _, seq := range seqs {
		last = max(last, seq)
	}
	for _, k := range tables {
		last = max(last, floors[peer][k])
	}
	g.StartSeq = max(last+1, oldSeq)
	return g, nil
}

func sources(gs []sourceGroup) []*jetstream.StreamSource {
	out := make([]*jetstream.StreamSource, len(gs))
	for i, g := range gs {
		out[i] = g.toSource()
	}
	return out
}

// observe records per-peer state from the stream's source infos, the
// backlog (subscribed tables no healthy source carries yet) and the lag
// gauges.
func (r *ReplicationReconciler) observe(info *jetstream.StreamInfo, want map[string]map[storage.TableKey]wanted, peerErrs map[string]error) {
	st := map[string]PeerReplication{}
	for peer := range want {
		p := PeerReplication{Converged: true}
		if err := peerErrs[peer]; err != nil {
			p.Converged, p.LastError = false, err.Error()
		}
		st[peer] = p
	}
	for _, si := range info.Sources {
		if si.External == nil {
			continue
		}
		peer := strings.TrimSuffix(strings.TrimPrefix(si.External.APIPrefix, "$JS."), ".API")
		p := st[peer]
		p.Sources++
		p.Lag += si.Lag
		if si.Error != nil && p.LastError == "" {
			p.Converged = false
			p.LastError = si.Error.Error()
		}
		st[peer] = p
	}
	errs := sourceErrors(info)
	carried := map[string]map[storage.TableKey]bool{}
	for _, src := range info.Config.Sources {
		g, ok := parseSource(src)
		if !ok || errs[g.ID] != "" {
			continue
		}
		if carried[g.Peer] == nil {
			carried[g.Peer] = map[storage.TableKey]bool{}
		}
		for _, k := range g.Tables {
			carried[g.Peer][k] = true
		}
	}
	backlog := 0
	for peer, w := range want {
		for k := range w {
			if !carried[peer][k] {
				backlog++
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.backlog = st, backlog
	if r.Metrics == nil {
		return
	}
	// The peer label set stays bounded: peers no longer replicated from are
	// removed from the gauge.
	for peer := range r.lagPeers {
		if _, ok := st[peer]; !ok {
			r.Metrics.ReplicationLag.DeleteLabelValues(peer)
		}
	}
	r.lagPeers = map[string]bool{}
	for peer, p := range st {
		r.Metrics.ReplicationLag.WithLabelValues(peer).Set(float64(p.Lag))
		r.lagPeers[peer] = true
	}
}

// Backlog is the number of subscribed tables that no healthy source carried
// at the end of the latest pass: the worker's queue.
func (r *ReplicationReconciler) Backlog() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backlog
}

// sourceErrors maps group ids to the error JetStream reports for the group's
// source ("" when none).
func sourceErrors(info *jetstream.StreamInfo) map[string]string {
	out := map[string]string{}
	for _, si := range info.Sources {
		if si == nil || si.Error == nil {
			continue
		}
		for _, tr := range si.SubjectTransforms {
			p := strings.Split(tr.Source, ".")
			if len(p) == 4 && p[0] == "txn" && p[1] == markerDB {
				out[p[2]] = si.Error.Error()
			}
		}
	}
	return out
}

// TablePosition is how far this node has received one table's transactions
// from a peer, and whether a source carries them.
type TablePosition struct {
	// Next is the first of the peer's stream sequences for the table not
	// received here; 0 when unknown (no source yet and nothing received),
	// in which case everything from Since is outstanding.
	Next  uint64
	Since time.Time
	// Sourced says a source group carries the table; SourceError is the
	// error JetStream reports for that source.
	Sourced     bool
	SourceError string
}

// Positions reports, for every table n's subscriptions pull from n, how far
// this node has received it. Received means imported, imported and then
// purged (the import floor), or skipped on purpose because it precedes the
// subscription's start (the group's start sequence).
func (r *ReplicationReconciler) Positions(ctx context.Context, n storage.Node) (map[storage.TableKey]TablePosition, error) {
	out := map[storage.TableKey]TablePosition{}
	info, err := r.Stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", TxnStreamName, err)
	}
	floors, err := r.Store.ImportFloors()
	if err != nil {
		return nil, fmt.Errorf("load import floors: %w", err)
	}
	errs := sourceErrors(info)
	groups := map[storage.TableKey]sourceGroup{}
	for _, src := range info.Config.Sources {
		if g, ok := parseSource(src); ok && g.Peer == n.Name {
			for _, k := range g.Tables {
				groups[k] = g
			}
		}
	}
	// One batched read for every table (a request per table made
	// cluster_status O(tables) round trips).
	var subjects []string
	for _, s := range n.Subscriptions {
		if s.Subscribe {
			subjects = append(subjects, OriginSubject(s.Key(), n.Name))
		}
	}
	lasts, err := r.Stream.LastImportedSeqs(ctx, subjects)
	if err != nil {
		return nil, err
	}
	for _, s := range n.Subscriptions {
		if !s.Subscribe {
			continue
		}
		k := s.Key()
		through := max(lasts[OriginSubject(k, n.Name)], floors[n.Name][k])
		p := TablePosition{Since: n.Added}
		if s.StartTime != nil {
			p.Since = *s.StartTime
		}
		if g, ok := groups[k]; ok {
			p.Sourced, p.SourceError = true, errs[g.ID]
			if g.StartSeq > 0 {
				through = max(through, g.StartSeq-1)
			}
		}
		if through > 0 || p.Sourced {
			p.Next = through + 1
		}
		out[k] = p
	}
	return out, nil
}

// stalledPeers names the peers of the stalled groups, sorted, for the log:
// "restarted_stalled: 1" every few seconds says nothing about which peer is
// down.
func stalledPeers(have []sourceGroup, stalled map[string]bool) []string {
	var out []string
	for _, g := range have {
		if stalled[g.ID] && !slices.Contains(out, g.Peer) {
			out = append(out, g.Peer)
		}
	}
	slices.Sort(out)
	return out
}
