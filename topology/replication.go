package topology

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// PeerReplication is one peer's replication state, for cluster_status.
type PeerReplication struct {
	Converged bool   `json:"converged"`
	Lag       uint64 `json:"lag"`
	Sources   int    `json:"sources"`
	// CatchingUp counts the catch-up lanes among Sources: tables whose
	// start lay behind their main lane, not joined to it yet.
	CatchingUp int    `json:"catching_up,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

// ReplicationReconciler converges this node's lanes (see lane) to the
// subscriptions in storage. A pass observes the stream's sources and each
// lane's consumer on its origin, plans with planStep (pure) and applies one
// kind of change at a time, re-observing between steps.
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
	lanes    map[string][]lane // last observation, by peer

	restartedMu sync.Mutex
	restarted   map[string]bool
	// settled is the desired state of the last pass that found nothing to
	// change, and settledAt when that was: a pass woken again before
	// recheckAfter with the same desired state skips asking the servers.
	settled   map[string]map[storage.TableKey]wanted
	settledAt time.Time
	// mergeTried spaces merge attempts of a catch-up lane.
	mergeTried map[string]time.Time
	// firstSeen is when this process first saw each lane (by name): a lane
	// gets stallGrace to start before its silence counts.
	firstSeen map[string]time.Time
	// removedAt is, per peer and table taken out of a lane to be
	// re-sourced, the lane's position after the removal and when it was
	// removed: the purge waits until what the lane delivered before is in.
	removedAt map[string]map[storage.TableKey]removal
}

type removal struct {
	next uint64
	at   time.Time
}

// A healthy lane's source hears from its consumer every second (heartbeats
// when idle). One that has heard nothing for stallSilence, although the
// consumer is there, is stuck in nats-server's retry backoff (its consumer
// request went out before the mesh was up, after a restart: a 5 s timeout,
// then backoff): the lane is rebuilt, exactly, from what this node imported.
const (
	stallSilence = 2 * time.Second
	stallGrace   = time.Second
)

// recheckAfter is how long a settled pass vouches for the servers' state.
const recheckAfter = time.Second

// pauseFor bounds how long a lane stays paused should clusterd die
// between pausing and resuming it (nats-server resumes it then).
const pauseFor = 10 * time.Second

// unknownEvery spaces passes while an origin cannot be asked.
const unknownEvery = 500 * time.Millisecond

// mergeEvery spaces merge attempts of one catch-up lane; a merge tries
// mergeAttempts times in a row before it waits that long.
const (
	mergeEvery    = 100 * time.Millisecond
	mergeAttempts = 8
)

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
			if y, ok := wb[k]; !ok || !x.Start.Equal(y.Start) || x.Epoch != y.Epoch || x.Resource != y.Resource || x.Floor != y.Floor {
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

// PeerRestarted asks the next pass to look at peer's lanes at once: a
// restarted origin lost the lanes' consumers (they live in its memory), and
// they are rebuilt from what this node imported.
func (r *ReplicationReconciler) PeerRestarted(peer string) {
	r.Log.Info("peer restarted: its lanes are looked at now", zap.String("peer", peer))
	r.restartedMu.Lock()
	defer r.restartedMu.Unlock()
	if r.restarted == nil {
		r.restarted = map[string]bool{}
	}
	r.restarted[peer] = true
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

// Backlog is the number of subscribed tables that no healthy lane carried
// at the end of the latest pass: the worker's queue.
func (r *ReplicationReconciler) Backlog() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backlog
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

// maxSteps bounds the steps of one pass; what is left is the next pass's.
const maxSteps = 8

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
	for peer := range r.removedAt {
		if _, ok := want[peer]; !ok {
			delete(r.removedAt, peer)
		}
	}
	r.restartedMu.Lock()
	r.restarted = nil
	r.restartedMu.Unlock()
	changed := false
	for range maxSteps {
		info, err := r.Stream.Ensure(ctx)
		if err != nil {
			return changed, err
		}
		lanes, foreign, peerErrs := r.observe(ctx, info)
		plan := planStep(lanes, want, foreign, r.mergeDue)
		if plan.Kind == stepNone {
			// A peer that could not be asked is reported on its own
			// (cluster_status) and looked at again on the next pass; the
			// others are converged, and so is the worker.
			r.record(info, lanes, want, peerErrs)
			if len(peerErrs) == 0 {
				r.settled, r.settledAt = want, time.Now()
			}
			return changed, nil
		}
		stepErrs := r.apply(ctx, plan, lanes, want)
		changed = true
		r.Log.Info("replication step", zap.String("step", plan.Kind.String()), zap.Int("errors", len(stepErrs)))
		for p, e := range stepErrs {
			peerErrs[p] = e
		}
		if len(stepErrs) > 0 || plan.Kind == stepMerge {
			if info, err := r.Stream.Info(ctx); err == nil {
				lanes, _, _ := r.observe(ctx, info)
				r.record(info, lanes, want, peerErrs)
			}
			if len(stepErrs) > 0 {
				return changed, joinPeerErrs(peerErrs)
			}
			if plan.Kind == stepMerge {
				return changed, nil // merges not yet possible wait for the next pass
			}
		}
		// Tables just placed or rebuilt may need the stream to settle
		// before the next observation; want is re-read for epochs applied.
		if want, err = r.desired(); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func joinPeerErrs(errs map[string]error) error {
	var msgs []string
	for p, err := range errs {
		msgs = append(msgs, p+": "+err.Error())
	}
	sort.Strings(msgs)
	return fmt.Errorf("replication not converged for %s", strings.Join(msgs, "; "))
}

// Requeue asks for the next pass soon while catch-up lanes wait to join
// their main lane (see Loop.Requeue).
// and while lanes are too young to be judged stalled.
func (r *ReplicationReconciler) Requeue() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ls := range r.lanes {
		for _, l := range ls {
			if !l.Main && len(l.Tables) > 0 {
				return mergeEvery
			}
			if l.Unknown {
				// An origin that could not be asked (down, restarting):
				// once back, its lanes are lost (they lived in its memory)
				// and are rebuilt the sooner they are seen. One request a
				// pass while it is away.
				return unknownEvery
			}
		}
	}
	for _, t := range r.firstSeen {
		if time.Since(t) < stallGrace+stallSilence {
			return stallGrace / 2
		}
	}
	return 0
}

func (r *ReplicationReconciler) mergeDue(l lane) bool {
	return time.Since(r.mergeTried[l.Name]) >= mergeEvery
}

// observe reads this node's lanes: the stream's sources, and each lane's
// consumer on its origin (peers asked in parallel, one lane after another).
func (r *ReplicationReconciler) observe(ctx context.Context, info *jetstream.StreamInfo) (map[string][]lane, bool, map[string]error) {
	lanes := map[string][]lane{}
	foreign := false
	for _, s := range info.Config.Sources {
		if l, ok := parseLaneSource(s, r.Stream.Node); ok {
			lanes[l.Peer] = append(lanes[l.Peer], l)
		} else {
			foreign = true // not ours: removed
		}
	}
	// Source infos name no consumer: errors, lag and silence are known
	// per peer.
	srcErr, lag, silent := map[string]string{}, map[string]uint64{}, map[string]bool{}
	for _, si := range info.Sources {
		if si == nil || si.External == nil {
			continue
		}
		peer := strings.TrimSuffix(strings.TrimPrefix(si.External.APIPrefix, "$JS."), ".API")
		lag[peer] += si.Lag
		if si.Error != nil && srcErr[peer] == "" {
			srcErr[peer] = si.Error.Error()
		}
		if si.Active < 0 || si.Active > stallSilence {
			silent[peer] = true
		}
	}
	now := time.Now()
	seen := map[string]time.Time{}
	for _, ls := range lanes {
		for _, l := range ls {
			if t, ok := r.firstSeen[l.Name]; ok {
				seen[l.Name] = t
			} else {
				seen[l.Name] = now
			}
		}
	}
	r.firstSeen = seen
	forgetDeparted(r.mergeTried, lanes)
	peerErrs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for peer, ls := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask := func(l *lane) error {
				l.SourceErr, l.Lag = srcErr[peer], lag[peer]
				ci, err := r.Stream.ConsumerInfo(ctx, peer, l.Name)
				switch {
				case errors.Is(err, errLaneGone):
					l.Lost = true
				case err != nil:
					return err
				default:
					l.readConsumer(ci)
					l.Stalled = silent[peer] && now.Sub(seen[l.Name]) > stallGrace
				}
				return nil
			}
			// The first answer says whether the origin can be asked at all:
			// a peer that is down costs one timeout a pass, not one per lane.
			err := ask(&ls[0])
			if err == nil && len(ls) > 1 {
				errs := make([]error, len(ls))
				var lw sync.WaitGroup
				sem := make(chan struct{}, 8)
				for i := 1; i < len(ls); i++ {
					lw.Add(1)
					sem <- struct{}{}
					go func() { defer func() { <-sem; lw.Done() }(); errs[i] = ask(&ls[i]) }()
				}
				lw.Wait()
				err = errors.Join(errs...)
			}
			if err != nil {
				for i := range ls {
					if !ls[i].Lost && ls[i].config == nil {
						ls[i].Unknown = true
					}
				}
				mu.Lock()
				peerErrs[peer] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lanes, foreign, peerErrs
}

// apply carries out one step; errors are per peer.
func (r *ReplicationReconciler) apply(ctx context.Context, p passPlan, lanes map[string][]lane, want map[string]map[storage.TableKey]wanted) map[string]error {
	errs := map[string]error{}
	switch p.Kind {
	case stepDrop:
		drop := map[string]bool{}
		for _, l := range p.Drop {
			drop[l.Name] = true
		}
		if err := r.Stream.SetSources(ctx, keepSources(lanes, drop)); err != nil {
			errs[""] = err
			return errs
		}
		for _, l := range p.Drop {
			if !l.Lost {
				if err := r.Stream.DeleteConsumer(ctx, l.Peer, l.Name); err != nil {
					// Left to nats-server: it deletes a consumer nobody
					// sources after laneInactive.
					r.Log.Debug("lane consumer not deleted", zap.String("peer", l.Peer), zap.String("lane", l.Name), zap.Error(err))
				}
			}
		}
		for _, l := range p.Drop {
			r.Log.Info("replication lane dropped", zap.String("peer", l.Peer), zap.String("lane", l.Name), zap.Bool("lost", l.Lost), zap.Bool("stalled", l.Stalled), zap.Bool("main", l.Main), zap.Int("tables", len(l.Tables)))
		}
		if p.Foreign {
			r.Log.Info("foreign sources removed from the transaction stream")
		}
	case stepTrim:
		for _, t := range p.Trim {
			remove := map[storage.TableKey]bool{}
			for _, k := range t.Remove {
				remove[k] = true
			}
			var keep []storage.TableKey
			for _, k := range t.Lane.Tables {
				if !remove[k] {
					keep = append(keep, k)
				}
			}
			l := t.Lane
			l.Tables = keep
			ci, err := r.updateLane(ctx, l)
			if err != nil {
				errs[l.Peer] = err
				continue
			}
			for _, k := range t.Remove {
				if want[l.Peer][k].Resource {
					r.noteRemoval(l.Peer, k, ci.Delivered.Stream+1)
				}
			}
		}
	case stepResource:
		for peer, tables := range p.Resource {
			if err := r.resource(ctx, peer, tables, want[peer]); err != nil {
				errs[peer] = err
			}
		}
	case stepPlace:
		var added []lane
		for _, peer := range sortedPeers(p.Place) {
			ls, err := r.place(ctx, peer, p.Place[peer], want[peer], lanes[peer])
			added = append(added, ls...)
			if err != nil {
				errs[peer] = err
			}
		}
		if len(added) > 0 {
			if _, err := r.setSourcesIsolating(ctx, keepSources(lanes, nil), added, errs); err != nil {
				for _, l := range added {
					_ = r.Stream.DeleteConsumer(ctx, l.Peer, l.Name)
				}
				errs[""] = err
			}
		}
	case stepSplit:
		for _, l := range p.Split {
			if err := r.split(ctx, l, p.Shards[l.Peer], lanes); err != nil {
				errs[l.Peer] = err
			}
		}
	case stepMerge:
		for _, k := range p.Merge {
			if r.mergeTried == nil {
				r.mergeTried = map[string]time.Time{}
			}
			r.mergeTried[k.Name] = time.Now()
			if err := r.merge(ctx, k, lanes[k.Peer]); err != nil {
				errs[k.Peer] = err
			}
		}
	}
	return errs
}

func keepSources(lanes map[string][]lane, drop map[string]bool) []*jetstream.StreamSource {
	var out []*jetstream.StreamSource
	for _, peer := range sortedPeers(lanes) {
		for _, l := range lanes[peer] {
			if !drop[l.Name] {
				out = append(out, l.source())
			}
		}
	}
	return out
}

func (r *ReplicationReconciler) noteRemoval(peer string, k storage.TableKey, next uint64) {
	if r.removedAt == nil {
		r.removedAt = map[string]map[storage.TableKey]removal{}
	}
	if r.removedAt[peer] == nil {
		r.removedAt[peer] = map[storage.TableKey]removal{}
	}
	r.removedAt[peer][k] = removal{next: next, at: time.Now()}
}

// settleWait bounds how long a re-sourced table's purge waits for what its
// lane delivered before the removal to be stored.
const settleWait = 5 * time.Second

// resource starts tables over from their start time: once what their lane
// delivered before it let them go is stored, their imported transactions
// are purged, their floors cleared and the epoch recorded as applied; the
// place step then puts them in a catch-up lane from the start.
func (r *ReplicationReconciler) resource(ctx context.Context, peer string, tables []storage.TableKey, want map[storage.TableKey]wanted) error {
	var ready []storage.TableKey
	for _, k := range tables {
		rm, ok := r.removedAt[peer][k]
		if !ok || time.Since(rm.at) > settleWait {
			ready = append(ready, k)
			continue
		}
		subj := OriginSubject(k, peer)
		last, err := r.Stream.PeerLastSeqs(ctx, peer, []string{subj}, rm.next-1)
		if err != nil {
			return err
		}
		got, err := r.Stream.LastImportedSeq(ctx, subj)
		if err != nil {
			return err
		}
		if got >= last[subj] || want[k].Floor >= last[subj] {
			ready = append(ready, k)
		}
	}
	for _, k := range ready {
		subj := OriginSubject(k, peer)
		if err := r.Stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return fmt.Errorf("purge %s before re-sourcing: %w", subj, err)
		}
		// Starting over from the start time: what was received before no
		// longer bounds where the table starts.
		if err := r.Store.ClearImportFloor(peer, k); err != nil {
			return err
		}
		if err := r.Store.SetAppliedEpoch(peer, k, want[k].Epoch); err != nil {
			return err
		}
		delete(r.removedAt[peer], k)
	}
	if len(ready) < len(tables) {
		return fmt.Errorf("%d re-sourced tables wait for their last transactions to be stored", len(tables)-len(ready))
	}
	return nil
}

// starts works out where each table must start (see tableStart).
func (r *ReplicationReconciler) starts(ctx context.Context, peer string, tables []storage.TableKey, want map[storage.TableKey]wanted) (map[storage.TableKey]uint64, error) {
	imported, err := r.Stream.LastImportedSeqs(ctx, originSubjects(tables, peer))
	if err != nil {
		return nil, err
	}
	seqAt := map[time.Time]uint64{}
	out := make(map[storage.TableKey]uint64, len(tables))
	for _, k := range tables {
		w := want[k]
		s, ok := seqAt[w.Start]
		if !ok {
			if s, err = r.Stream.PeerSeqAt(ctx, peer, w.Start); err != nil {
				return nil, fmt.Errorf("find where to start replicating %s: %w", k, err)
			}
			seqAt[w.Start] = s
		}
		out[k] = tableStart(imported[OriginSubject(k, peer)], w.Floor, s)
	}
	return out, nil
}

// fits splits tables into those that can join a lane at p and the rest.
func (r *ReplicationReconciler) fits(ctx context.Context, peer string, tables []storage.TableKey, start map[storage.TableKey]uint64, p uint64) (join, rest []storage.TableKey, err error) {
	checks := placementChecks(tables, start, p)
	byHi := map[uint64][]rangeCheck{}
	for _, c := range checks {
		byHi[c.Hi] = append(byHi[c.Hi], c)
	}
	bad := map[storage.TableKey]bool{}
	for hi, cs := range byHi {
		subjects := make([]string, len(cs))
		for i, c := range cs {
			subjects[i] = OriginSubject(c.Table, peer)
		}
		last, err := r.Stream.PeerLastSeqs(ctx, peer, subjects, hi-1)
		if err != nil {
			return nil, nil, err
		}
		for i, c := range cs {
			if !passes(c, last[subjects[i]]) {
				bad[c.Table] = true
			}
		}
	}
	for _, k := range tables {
		if bad[k] {
			rest = append(rest, k)
		} else {
			join = append(join, k)
		}
	}
	return join, rest, nil
}

// place puts tables no lane carries into lanes, shard by shard: into the
// shard's main lane when their start allows (the lane paused while it is
// checked, so its position is exact), else into a new main lane or a
// catch-up lane starting exactly where they must. It returns the lanes it
// created (their sources are the caller's to add).
func (r *ReplicationReconciler) place(ctx context.Context, peer string, tables []storage.TableKey, want map[storage.TableKey]wanted, ls []lane) ([]lane, error) {
	start, err := r.starts(ctx, peer, tables, want)
	if err != nil {
		return nil, err
	}
	k := peerShards(ls, len(want))
	byShard := map[int][]storage.TableKey{}
	for _, t := range tables {
		byShard[ShardOf(t, k)] = append(byShard[ShardOf(t, k)], t)
	}
	shards := make([]int, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	sort.Ints(shards)
	var created []lane
	for _, shard := range shards {
		ts := byShard[shard]
		var main *lane
		for i := range ls {
			if l := &ls[i]; l.Main && !l.Lost && !l.Unknown && l.Shard == shard && l.Shards == k {
				main = l
				break
			}
		}
		var join, rest []storage.TableKey
		if main != nil {
			ci, err := r.pauseLane(ctx, *main)
			if err != nil {
				return created, err
			}
			join, rest, err = r.fits(ctx, peer, ts, start, ci.Delivered.Stream+1)
			if err == nil && len(join) > 0 {
				l := *main
				l.Tables = append(append([]storage.TableKey{}, main.Tables...), join...)
				sortKeys(l.Tables)
				if _, err = r.updateLane(ctx, l); err == nil {
					main.Tables = l.Tables
				}
			}
			if rerr := r.resumeLane(ctx, *main); err == nil {
				err = rerr
			}
			if err != nil {
				return created, err
			}
		} else {
			var p uint64
			for _, t := range ts {
				p = max(p, start[t])
			}
			if join, rest, err = r.fits(ctx, peer, ts, start, p); err != nil {
				return created, err
			}
			l := lane{Peer: peer, Name: laneName(r.Stream.Node, newGeneration()), Main: true, Shard: shard, Shards: k, Tables: join}
			if _, err := r.Stream.PutConsumer(ctx, peer, l.consumerConfig(r.Stream.Node, p), true); err != nil {
				return created, fmt.Errorf("create lane on %s: %w", peer, err)
			}
			created = append(created, l)
		}
		starts, groups := groupByStart(rest, start)
		for _, s := range starts {
			l := lane{Peer: peer, Name: laneName(r.Stream.Node, newGeneration()), Shard: shard, Shards: k, Tables: groups[s]}
			sortKeys(l.Tables)
			if _, err := r.Stream.PutConsumer(ctx, peer, l.consumerConfig(r.Stream.Node, s), true); err != nil {
				return created, fmt.Errorf("create catch-up lane on %s: %w", peer, err)
			}
			created = append(created, l)
		}
		if len(rest) > 0 {
			r.Log.Info("tables catch up before joining their lane", zap.String("peer", peer), zap.Int("tables", len(rest)), zap.Int("lanes", len(starts)))
		}
	}
	return created, nil
}

// merge joins a catch-up lane into its shard's main lane once no
// transaction of its tables lies between the two lanes' positions (both
// paused while checked), and once what it delivered is stored here; its
// tables then move in one filter update, and the emptied catch-up lane is
// dropped by the next step. Without a main lane it becomes the main lane.
func (r *ReplicationReconciler) merge(ctx context.Context, k lane, ls []lane) error {
	var main *lane
	for i := range ls {
		if l := &ls[i]; l.Main && !l.Lost && !l.Unknown && l.Shard == k.Shard && l.Shards == k.Shards {
			main = l
			break
		}
	}
	if main == nil {
		k.Main = true
		_, err := r.updateLane(ctx, k)
		return err
	}
	// Not worth pausing the main lane while the catch-up lane is far behind.
	if k.Next+laneMaxAckPending < main.Next {
		return nil
	}
	resume := func() {
		_ = r.both(ctx, *main, k, r.resumeLane)
	}
	// Both lanes are paused at once (two requests in flight together), so
	// that while transactions keep coming they stop close together; when
	// one of the moving tables still has a transaction between the two
	// positions, both run on and are paused again, a few times.
	var pc, pk uint64
	fit := false
	for attempt := 0; attempt < mergeAttempts && !fit; attempt++ {
		if attempt > 0 {
			resume()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
		// A consumer looks past transactions it does not carry only when
		// woken (by one it carries): woken first, both lanes stand at the
		// stream's end when paused, unless transactions came in between.
		if err := r.both(ctx, *main, k, r.wakeLane); err != nil {
			resume()
			return err
		}
		var cc, kc *jetstream.ConsumerInfo
		var cerr, kerr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); kc, kerr = r.pauseLane(ctx, k) }()
		cc, cerr = r.pauseLane(ctx, *main)
		wg.Wait()
		if err := errors.Join(cerr, kerr); err != nil {
			resume()
			return err
		}
		pc, pk = cc.Delivered.Stream+1, kc.Delivered.Stream+1
		start := map[storage.TableKey]uint64{}
		for _, t := range k.Tables {
			start[t] = pk
		}
		_, rest, err := r.fits(ctx, k.Peer, k.Tables, start, pc)
		if err != nil {
			resume()
			return err
		}
		fit = len(rest) == 0
		r.Log.Debug("merge attempt", zap.String("lane", k.Name), zap.Uint64("main_next", pc), zap.Uint64("catchup_next", pk), zap.Bool("fit", fit), zap.Int("attempt", attempt),
			zap.Uint64("k_dseq", kc.Delivered.Consumer), zap.Uint64("k_ack", kc.AckFloor.Stream), zap.Uint64("c_dseq", cc.Delivered.Consumer), zap.Uint64("c_ack", cc.AckFloor.Stream))
	}
	if !fit {
		resume()
		return nil
	}
	if err := r.waitStored(ctx, k, pk); err != nil {
		resume()
		return err
	}
	// The catch-up lane lets go first: should clusterd die between the two
	// updates, the tables are in no lane and are placed again from what was
	// stored, never carried twice.
	empty := k
	empty.Tables = nil
	if _, err := r.updateLane(ctx, empty); err != nil {
		resume()
		return err
	}
	m := *main
	m.Tables = append(append([]storage.TableKey{}, main.Tables...), k.Tables...)
	sortKeys(m.Tables)
	_, err := r.updateLane(ctx, m)
	if err == nil {
		main.Tables = m.Tables
	}
	resume()
	if err != nil {
		return err
	}
	r.Log.Info("catch-up lane joined its main lane", zap.String("peer", k.Peer), zap.String("lane", k.Name), zap.String("main", main.Name), zap.Int("tables", len(k.Tables)), zap.Uint64("at", pc), zap.Uint64("catchup_at", pk))
	return nil
}

// split divides a main lane of shard i (of k) into the lanes of shards
// i, i+k, i+2k… (of shards): paused at an exact position, the new lanes are
// created from there with the tables that move, the lane keeps the rest,
// and the new lanes' sources are added before it resumes.
func (r *ReplicationReconciler) split(ctx context.Context, l lane, shards int, lanes map[string][]lane) error {
	ci, err := r.pauseLane(ctx, l)
	if err != nil {
		return err
	}
	defer func() { _ = r.resumeLane(ctx, l) }()
	p := ci.Delivered.Stream + 1
	moved := map[int][]storage.TableKey{}
	var keep []storage.TableKey
	for _, t := range l.Tables {
		if s := ShardOf(t, shards); s == l.Shard {
			keep = append(keep, t)
		} else {
			moved[s] = append(moved[s], t)
		}
	}
	var added []lane
	for _, s := range sortedShards(moved) {
		nl := lane{Peer: l.Peer, Name: laneName(r.Stream.Node, newGeneration()), Main: true, Shard: s, Shards: shards, Tables: moved[s]}
		if _, err := r.Stream.PutConsumer(ctx, l.Peer, nl.consumerConfig(r.Stream.Node, p), true); err != nil {
			for _, a := range added {
				_ = r.Stream.DeleteConsumer(ctx, a.Peer, a.Name)
			}
			return fmt.Errorf("split lane %s on %s: %w", l.Name, l.Peer, err)
		}
		added = append(added, nl)
	}
	// The lane lets its moved tables go before their new lanes' sources are
	// added: should clusterd die in between, they are in no lane and are
	// placed again from what was stored, never carried twice.
	kept := l
	kept.Tables, kept.Shards = keep, shards
	if _, err := r.updateLane(ctx, kept); err != nil {
		for _, a := range added {
			_ = r.Stream.DeleteConsumer(ctx, a.Peer, a.Name)
		}
		return err
	}
	errs := map[string]error{}
	ok, err := r.setSourcesIsolating(ctx, keepSources(lanes, nil), added, errs)
	if err != nil {
		return err
	}
	// The next split of this step keeps these sources too.
	lanes[l.Peer] = append(lanes[l.Peer], ok...)
	r.Log.Info("replication lane split", zap.String("peer", l.Peer), zap.String("lane", l.Name), zap.Int("shards", shards), zap.Int("kept", len(keep)), zap.Int("new_lanes", len(added)), zap.Uint64("at", p), zap.Uint64("observed_next", l.Next))
	return errs[l.Peer]
}

func sortedShards(m map[int][]storage.TableKey) []int {
	out := make([]int, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// waitStored waits until this node stored what lane l delivered below next.
func (r *ReplicationReconciler) waitStored(ctx context.Context, l lane, next uint64) error {
	subjects := originSubjects(l.Tables, l.Peer)
	want, err := r.Stream.PeerLastSeqs(ctx, l.Peer, subjects, next-1)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, err := r.Stream.LastImportedSeqs(ctx, subjects)
		if err != nil {
			return err
		}
		done := true
		for _, s := range subjects {
			if got[s] < want[s] {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lane %s: delivered transactions not stored yet", l.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// both runs f on two lanes at once.
func (r *ReplicationReconciler) both(ctx context.Context, a, b lane, f func(context.Context, lane) error) error {
	var errB error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errB = f(ctx, b) }()
	errA := f(ctx, a)
	wg.Wait()
	return errors.Join(errA, errB)
}

// wakeLane makes a lane's consumer look at the stream now (nats-server
// signals a consumer whose MaxAckPending changes): its position passes the
// transactions it does not carry, and what waited while it was paused goes.
// It flips MaxAckPending between two values, from the value last written
// (lanes share their config, which every update refreshes).
func (r *ReplicationReconciler) wakeLane(ctx context.Context, l lane) error {
	if l.config == nil {
		return fmt.Errorf("lane %s on %s: consumer not observed", l.Name, l.Peer)
	}
	cfg := *l.config
	cfg.MaxAckPending = laneMaxAckPending + 1
	if l.config.MaxAckPending == laneMaxAckPending+1 {
		cfg.MaxAckPending = laneMaxAckPending
	}
	ci, err := r.Stream.PutConsumer(ctx, l.Peer, cfg, false)
	if err != nil {
		return fmt.Errorf("wake lane %s on %s: %w", l.Name, l.Peer, err)
	}
	*l.config = ci.Config
	return nil
}

// pauseLane pauses a lane's consumer; the info read after it holds its
// exact position (a paused consumer delivers nothing).
func (r *ReplicationReconciler) pauseLane(ctx context.Context, l lane) (*jetstream.ConsumerInfo, error) {
	if err := r.Stream.PauseConsumer(ctx, l.Peer, l.Name, time.Now().Add(pauseFor)); err != nil {
		return nil, fmt.Errorf("pause lane %s on %s: %w", l.Name, l.Peer, err)
	}
	return r.Stream.ConsumerInfo(ctx, l.Peer, l.Name)
}

// resumeLane lets a paused lane's consumer deliver again. nats-server does
// not wake a consumer it resumes: what arrived while it was paused would
// wait for the next transaction or heartbeat (up to a second, measured as
// a 986 ms subscription convergence), so the lane is woken too.
func (r *ReplicationReconciler) resumeLane(ctx context.Context, l lane) error {
	if err := r.Stream.PauseConsumer(ctx, l.Peer, l.Name, time.Time{}); err != nil {
		return fmt.Errorf("resume lane %s on %s: %w", l.Name, l.Peer, err)
	}
	return r.wakeLane(ctx, l)
}

// updateLane writes the lane's tables and kind to its consumer (its pause
// state stays as it is).
func (r *ReplicationReconciler) updateLane(ctx context.Context, l lane) (*jetstream.ConsumerInfo, error) {
	if l.config == nil {
		return nil, fmt.Errorf("lane %s on %s: consumer not observed", l.Name, l.Peer)
	}
	cfg := *l.config
	want := l.consumerConfig(r.Stream.Node, cfg.OptStartSeq)
	cfg.FilterSubject = ""
	cfg.FilterSubjects = want.FilterSubjects
	cfg.Metadata = want.Metadata
	ci, err := r.Stream.PutConsumer(ctx, l.Peer, cfg, false)
	if err != nil {
		return nil, fmt.Errorf("update lane %s on %s: %w", l.Name, l.Peer, err)
	}
	*l.config = ci.Config
	return ci, nil
}

// record keeps what the pass observed: per-peer state, the backlog
// (subscribed tables no healthy lane carries) and the lag gauges.
func (r *ReplicationReconciler) record(info *jetstream.StreamInfo, lanes map[string][]lane, want map[string]map[storage.TableKey]wanted, peerErrs map[string]error) {
	st := map[string]PeerReplication{}
	backlog := 0
	for peer, w := range want {
		p := PeerReplication{Converged: true}
		if err := peerErrs[peer]; err != nil {
			p.Converged, p.LastError = false, err.Error()
		}
		carried := map[storage.TableKey]bool{}
		for _, l := range lanes[peer] {
			p.Sources++
			if !l.Main {
				p.CatchingUp++
			}
			p.Lag = l.Lag
			if l.SourceErr != "" && p.LastError == "" {
				p.Converged, p.LastError = false, l.SourceErr
			}
			if l.Lost || l.Unknown || l.SourceErr != "" {
				continue
			}
			for _, k := range l.Tables {
				carried[k] = true
			}
		}
		for k := range w {
			if !carried[k] {
				backlog++
				p.Converged = false
			}
		}
		st[peer] = p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.backlog, r.lanes = st, backlog, lanes
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

// TablePosition is how far this node has received one table's transactions
// from a peer, and whether a lane carries them.
type TablePosition struct {
	// Next is the first of the peer's stream sequences for the table not
	// received here; 0 when nothing was received, in which case everything
	// from Since is outstanding.
	Next  uint64
	Since time.Time
	// Sourced says a lane carries the table; SourceError is the error
	// JetStream reports for the peer's sources.
	Sourced     bool
	SourceError string
}

// Positions reports, for every table n's subscriptions pull from n, how far
// this node has received it (imported, or imported and then purged: the
// import floor), as of the latest pass's view of the lanes.
func (r *ReplicationReconciler) Positions(ctx context.Context, n storage.Node) (map[storage.TableKey]TablePosition, error) {
	out := map[storage.TableKey]TablePosition{}
	floors, err := r.Store.ImportFloors()
	if err != nil {
		return nil, fmt.Errorf("load import floors: %w", err)
	}
	// The lanes' tables are the latest pass's view; whether their sources
	// are still there, and their errors, are read now.
	info, err := r.Stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", TxnStreamName, err)
	}
	present := map[string]bool{}
	for _, src := range info.Config.Sources {
		if l, ok := parseLaneSource(src, r.Stream.Node); ok && l.Peer == n.Name {
			present[l.Name] = true
		}
	}
	srcErr := ""
	for _, si := range info.Sources {
		if si != nil && si.External != nil && si.External.APIPrefix == apiPrefix(n.Name) && si.Error != nil && srcErr == "" {
			srcErr = si.Error.Error()
		}
	}
	r.mu.Lock()
	sourced := map[storage.TableKey]string{}
	for _, l := range r.lanes[n.Name] {
		if l.Lost || l.Unknown || !present[l.Name] {
			continue
		}
		for _, k := range l.Tables {
			sourced[k] = srcErr
		}
	}
	r.mu.Unlock()
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
		p.SourceError, p.Sourced = sourced[k]
		if through > 0 {
			p.Next = through + 1
		}
		out[k] = p
	}
	return out, nil
}
