package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// Peers reaches other nodes' inter-node calls.
type Peers interface {
	Call(ctx context.Context, node, call string, req, resp any) error
	Notify(node, call string, req any) error
}

// Inter-node calls.
const (
	callNodeSet      = "node_set"
	callNodeSetBatch = "node_set_batch"
	callNodeRemove   = "node_remove"
	callNodeSynced   = "node_synced"
)

// Modes of node_set.
const (
	modeAdd     = "add"
	modeUpdate  = "update"
	modeReplace = "replace"
)

// peerSetRequest asks a peer to record the caller with these subscriptions
// (already mirrored to the peer's point of view).
type peerSetRequest struct {
	Mode          string                 `json:"mode"`
	Subscriptions []storage.Subscription `json:"subscriptions"`
	CallerTables  []storage.TableKey     `json:"caller_tables"`
	// Intent, when set, names the caller's "sync" notice (its time): the
	// peer may answer once its write is queued, before it is committed and
	// synced, and confirms it is on disk with node_synced, upon which the
	// caller drops the notice. Without the confirmation (the peer crashed
	// or lost power first, or its write failed) the notice stays, and the
	// caller's notices worker re-syncs the peer.
	Intent string `json:"intent,omitempty"`
}

// nodeSynced confirms that a node_set carrying Intent is on the peer's disk.
type nodeSynced struct {
	Intent string `json:"intent"`
}

type peerSetReply struct {
	Skipped      []storage.TableKey `json:"skipped"`
	CalleeTables []storage.TableKey `json:"callee_tables"`
}

// peerSetBatch asks a peer to apply several node_set requests, in order, in
// one transaction (concurrent update_node requests about the same peer).
type peerSetBatch struct {
	Requests []peerSetRequest `json:"requests"`
	Intent   string           `json:"intent,omitempty"` // as peerSetRequest's
}

type peerSetBatchReply struct {
	Replies []peerSetReply `json:"replies"`
}

// nodeLocks serializes operations about the same peer on this node, so two
// concurrent requests cannot interleave their remote and local commits.
type nodeLocks struct {
	all   sync.RWMutex // configure_cluster takes it exclusively
	mu    sync.Mutex
	peers map[string]*sync.Mutex
}

func (l *nodeLocks) lock(peer string) func() {
	l.all.RLock()
	l.mu.Lock()
	if l.peers == nil {
		l.peers = map[string]*sync.Mutex{}
	}
	m, ok := l.peers[peer]
	if !ok {
		m = &sync.Mutex{}
		l.peers[peer] = m
	}
	l.mu.Unlock()
	m.Lock()
	return func() { m.Unlock(); l.all.RUnlock() }
}

func (o *Ops) nodeNameCheck(label string, v any) []string {
	s, _ := v.(string)
	if s == "" {
		return nil
	}
	if len(s) > MaxNameLen { // reported by the schema
		return nil
	}
	if p := storage.NameProblem(s); p != "" {
		return []string{label + " invalid, " + p}
	}
	if s == o.NodeName {
		return []string{label + " cannot be this nodes name"}
	}
	return nil
}

func (o *Ops) nodeSchema() Schema {
	return Schema{
		{Name: "node_name", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: o.nodeNameCheck},
		{Name: "subscriptions", Kind: kArray, Required: true, MinItems: 1, Items: subscriptionSchema},
	}
}

type nodeRequest struct {
	NodeName      string           `json:"node_name"`
	Subscriptions []subscriptionIn `json:"subscriptions"`
}

// requireActive returns problems for subscriptions with both flags false
// (add_node and configure_cluster only).
func requireActive(prefix string, subs []subscriptionIn) []string {
	var p []string
	for i, s := range subs {
		if !s.Subscribe && !s.Publish {
			p = append(p, fmt.Sprintf("'%ssubscriptions[%d]' subscribe and/or publish must be set to true when adding a node", prefix, i))
		}
	}
	return p
}

func peerError(op, node string, err error) error {
	var re *events.RemoteError
	switch {
	case errors.Is(err, events.ErrNotListening):
		return events.Errorf(500, "Unable to %s, node '%s' is not listening.", op, node)
	case errors.Is(err, events.ErrNoResponse):
		return events.Errorf(500, "Unable to %s, node '%s' is listening but did not respond.", op, node)
	case errors.As(err, &re):
		return events.Errorf(500, "Error returned from remote node %s: %s", node, re.Message)
	default:
		return events.Wrap(500, err, fmt.Sprintf("Unable to %s, node '%s': %v", op, node, err))
	}
}

// AddNodeReply is add_node's reply.
type AddNodeReply struct {
	Message string            `json:"message"`
	Added   []SubscriptionOut `json:"added"`
	Skipped []SubscriptionOut `json:"skipped"`
}

// UpdateNodeReply is update_node's and set_node_replication's reply.
type UpdateNodeReply struct {
	Message string            `json:"message"`
	Updated []SubscriptionOut `json:"updated"`
	Skipped []SubscriptionOut `json:"skipped"`
}

// AddNode registers a peer with subscriptions on both nodes.
func (o *Ops) AddNode(ctx context.Context, _ events.Caller, body []byte) (any, error) {
	return o.setNode(ctx, "add_node", body, modeAdd)
}

// UpdateNode upserts a peer's subscriptions on both nodes (also serves
// set_node_replication).
func (o *Ops) UpdateNode(op string) func(ctx context.Context, _ events.Caller, body []byte) (any, error) {
	return func(ctx context.Context, _ events.Caller, body []byte) (any, error) {
		return o.setNode(ctx, op, body, modeUpdate)
	}
}

func (o *Ops) setNode(ctx context.Context, op string, body []byte, mode string) (any, error) {
	if !o.ClusteringEnabled {
		return nil, errClusteringDisabled
	}
	var req nodeRequest
	if err := decodeInto(body, o.nodeSchema(), &req); err != nil {
		return nil, err
	}
	if mode == modeAdd {
		if err := validationError(requireActive("", req.Subscriptions)); err != nil {
			return nil, err
		}
	}
	subs := make([]storage.Subscription, len(req.Subscriptions))
	for i, s := range req.Subscriptions {
		subs[i] = s.toStorage()
	}
	if mode == modeUpdate {
		// Tables are never dropped, so "all held" stays true once seen.
		mine, err := o.heldTables(subs)
		if err != nil {
			return nil, fmt.Errorf("load tables: %w", err)
		}
		if len(mine) == len(subs) {
			if err := o.queueLink(op, req.NodeName, subs); err != nil {
				return nil, err
			}
			return UpdateNodeReply{Message: "Successfully updated '" + req.NodeName + "'", Updated: outs(subs), Skipped: outs(nil)}, nil
		}
	}
	defer o.locks.lock(req.NodeName)()
	if mode == modeAdd {
		if _, ok, err := o.Store.Node(req.NodeName); err != nil {
			return nil, fmt.Errorf("load node %s: %w", req.NodeName, err)
		} else if ok {
			return nil, events.Errorf(400, "Node '%s' has already been added, perform update_node to proceed.", req.NodeName)
		}
	}
	added, skipped, err := o.linkPeer(ctx, op, req.NodeName, subs, mode)
	if err != nil {
		return nil, err
	}
	msgAll, none := "Successfully added '"+req.NodeName+"' to manifest", "Unable to create subscriptions due to schema and/or tables not existing on the local or remote node"
	if mode != modeAdd {
		msgAll, none = "Successfully updated '"+req.NodeName+"'", "Unable to update subscriptions due to schema and/or tables not existing on the local or remote node"
	}
	msg := msgAll
	switch {
	case len(added) == 0:
		msg = none
	case len(skipped) > 0:
		msg = "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node"
	}
	if mode == modeAdd {
		return AddNodeReply{Message: msg, Added: outs(added), Skipped: outs(skipped)}, nil
	}
	return UpdateNodeReply{Message: msg, Updated: outs(added), Skipped: outs(skipped)}, nil
}

func (o *Ops) heldTables(subs []storage.Subscription) ([]storage.TableKey, error) {
	keys := make([]storage.TableKey, len(subs))
	for i, s := range subs {
		keys[i] = s.Key()
	}
	held, err := o.Store.HeldTables(keys)
	if err != nil {
		return nil, err
	}
	var out []storage.TableKey
	for _, k := range keys {
		if held[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

// linkPeer records subscriptions with a peer on both nodes. A "sync" notice
// is written before the peer is told, in the same transaction as the local
// record when every table is held here (then nothing can be skipped and the
// local commit runs concurrently with the peer's), else on its own. Whatever
// happens after that — a peer error, a timeout, a crash — the notices worker
// later brings the peer's record in line with ours, so the two never stay
// half-made. On a peer error the local record is put back as it was.
func (o *Ops) linkPeer(ctx context.Context, op, peer string, subs []storage.Subscription, mode string) (added, skipped []storage.Subscription, err error) {
	mine, err := o.heldTables(subs)
	if err != nil {
		return nil, nil, fmt.Errorf("load tables: %w", err)
	}
	have := keySet(mine)
	allHeld := true
	for _, s := range subs {
		allHeld = allHeld && have[s.Key()]
	}
	if allHeld {
		if err := o.linkHeld(ctx, peer, mode, [][]storage.Subscription{subs}); err != nil {
			var pf *peerFailure
			if errors.As(err, &pf) {
				return nil, nil, peerError(op, peer, pf.err)
			}
			return nil, nil, err
		}
		return subs, nil, nil
	}

	now := time.Now()
	notice := storage.Notice{Peer: peer, Kind: "sync", At: now.UTC()}
	req := peerSetRequest{Mode: mode, Subscriptions: mirrorAll(subs), CallerTables: mine}
	if err := o.Store.Update(func(tx *storage.Tx) error { return tx.PutNotice(notice) }); err != nil {
		return nil, nil, fmt.Errorf("record intent for node %s: %w", peer, err)
	}
	var rep peerSetReply
	if err := o.Peers.Call(ctx, peer, callNodeSet, req, &rep); err != nil {
		if !errors.Is(err, events.ErrNoResponse) {
			o.Store.DeleteNoticeLater(notice)
		}
		return nil, nil, peerError(op, peer, err)
	}
	skip := keySet(rep.Skipped)
	for _, s := range subs {
		if skip[s.Key()] {
			skipped = append(skipped, s)
		} else {
			added = append(added, s)
		}
	}
	if len(added) == 0 && mode != modeReplace {
		o.Store.DeleteNoticeLater(notice)
		return added, skipped, nil
	}
	err = o.Store.Update(func(tx *storage.Tx) error {
		if err := o.applyLink(tx, peer, added, have, mode, now); err != nil {
			return err
		}
		return tx.DeleteNotice(peer)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("record node %s: %w", peer, err)
	}
	o.Bus.Publish(events.NodesChanged)
	o.Bus.Publish(events.TablesChanged)
	return added, skipped, nil
}

// peerFailure is a failed call to the peer, for the caller to phrase with
// its operation's name.
type peerFailure struct{ err error }

func (e *peerFailure) Error() string { return e.err.Error() }

// linkHeld records one or more requests' subscriptions with a peer on both
// nodes, in order, when every table is held here (so nothing can be
// skipped). The "sync" notice and the record are committed locally first —
// so a crash of this process after the peer is told still finds the notice
// and re-syncs the peer — and the peer is told while that commit is being
// synced, the sync and the round trip overlapping; the peer answers without
// waiting for its disk (it confirms that later, and only then does the
// notice go).
// A peer failure puts our record back as it was.
func (o *Ops) linkHeld(ctx context.Context, peer, mode string, batches [][]storage.Subscription) error {
	now := time.Now()
	notice := storage.Notice{Peer: peer, Kind: "sync", At: now.UTC()}
	reqs := make([]peerSetRequest, len(batches))
	for i, subs := range batches {
		keys := make([]storage.TableKey, len(subs))
		for j, s := range subs {
			keys[j] = s.Key()
		}
		reqs[i] = peerSetRequest{Mode: mode, Subscriptions: mirrorAll(subs), CallerTables: keys}
	}
	intent := notice.At.Format(time.RFC3339Nano)
	reqs[0].Intent = intent
	var prev storage.Node
	var prevExists bool
	synced, err := o.Store.UpdateThenSync(func(tx *storage.Tx) error {
		n, exists, err := tx.Node(peer)
		if err != nil {
			return err
		}
		prev, prevExists = n, exists
		if err := tx.PutNotice(notice); err != nil {
			return err
		}
		// Every table is held: only the record changes, once for the batch.
		if !exists {
			n.Added = now
		}
		for _, subs := range batches {
			n.Subscriptions = mergeSubscriptions(n.Subscriptions, subs, mode != modeUpdate, now)
		}
		return tx.PutNode(n)
	})
	if err != nil {
		return fmt.Errorf("record node %s: %w", peer, err)
	}
	maybeApplied, peerErr := o.tellPeer(ctx, peer, reqs, intent)
	syncErr := <-synced
	switch {
	case syncErr != nil:
		// Not durable here; the notice (if it survives) re-syncs the peer.
		return fmt.Errorf("record node %s: %w", peer, syncErr)
	case peerErr != nil:
		if err := o.revertLink(peer, prev, prevExists, notice, maybeApplied); err != nil {
			return fmt.Errorf("put back node %s after a failed call (%v): %w", peer, peerErr, err)
		}
		return &peerFailure{peerErr}
	}
	o.Bus.Publish(events.NodesChanged)
	return nil
}

// tellPeer sends reqs to peer in one call. A peer running an older clusterd,
// which does not know node_set_batch, gets them one node_set at a time.
// maybeApplied says the peer may hold some of them despite the error (a
// timeout, or a failure after the first of several calls): its notice must
// stay.
func (o *Ops) tellPeer(ctx context.Context, peer string, reqs []peerSetRequest, intent string) (maybeApplied bool, err error) {
	if len(reqs) == 1 {
		err = o.Peers.Call(ctx, peer, callNodeSet, reqs[0], nil)
		return errors.Is(err, events.ErrNoResponse), err
	}
	err = o.Peers.Call(ctx, peer, callNodeSetBatch, peerSetBatch{Requests: reqs, Intent: intent}, nil)
	var re *events.RemoteError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Message, events.UnknownCall) {
		return errors.Is(err, events.ErrNoResponse), err
	}
	for i, r := range reqs {
		if err := o.Peers.Call(ctx, peer, callNodeSet, r, nil); err != nil {
			return i > 0 || errors.Is(err, events.ErrNoResponse), err
		}
	}
	return false, nil
}

// Batching. Operations about one peer are serialized (nodeLocks), so
// concurrent update_node requests for the same peer would each wait for the
// previous one's peer round trip and both nodes' synced writes. Instead,
// requests whose tables are all held here queue per peer; one runner takes
// everything queued, records it with one peer call and one local
// transaction (applied in arrival order on both nodes, as if one after the
// other), answers each request, and goes on with what queued meanwhile.

// maxLinkBatch bounds the requests one peer call carries.
const maxLinkBatch = 256

type linkReq struct {
	op   string
	subs []storage.Subscription
	done chan error
}

type linkQueue struct {
	pending []*linkReq
	running bool
}

type linkQueues struct {
	mu sync.Mutex
	q  map[string]*linkQueue
}

// queueLink records subs (all tables held here) with peer in update mode,
// batched with concurrent requests about the same peer, and returns once
// both nodes hold them.
func (o *Ops) queueLink(op, peer string, subs []storage.Subscription) error {
	r := &linkReq{op: op, subs: subs, done: make(chan error, 1)}
	o.links.mu.Lock()
	if o.links.q == nil {
		o.links.q = map[string]*linkQueue{}
	}
	q := o.links.q[peer]
	if q == nil {
		q = &linkQueue{}
		o.links.q[peer] = q
	}
	q.pending = append(q.pending, r)
	if !q.running {
		q.running = true
		go o.runLinks(peer, q)
	}
	o.links.mu.Unlock()
	return <-r.done
}

func (o *Ops) runLinks(peer string, q *linkQueue) {
	for {
		o.links.mu.Lock()
		n := min(len(q.pending), maxLinkBatch)
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		if n == 0 {
			q.running = false
			delete(o.links.q, peer)
			o.links.mu.Unlock()
			return
		}
		o.links.mu.Unlock()
		subs := make([][]storage.Subscription, n)
		for i, r := range batch {
			subs[i] = r.subs
		}
		unlock := o.locks.lock(peer)
		err := o.linkHeld(context.Background(), peer, modeUpdate, subs)
		unlock()
		for _, r := range batch {
			e := err
			var pf *peerFailure
			if errors.As(err, &pf) {
				e = peerError(r.op, peer, pf.err)
			}
			r.done <- e
		}
	}
}

// applyLink writes the peer's record with subs applied, creating the tables
// that are not held here yet.
func (o *Ops) applyLink(tx *storage.Tx, peer string, subs []storage.Subscription, have map[storage.TableKey]bool, mode string, now time.Time) error {
	for _, s := range subs {
		if !have[s.Key()] {
			if _, err := tx.PutTable(storage.Table{TableKey: s.Key(), Created: now}); err != nil {
				return err
			}
		}
	}
	n, exists, err := tx.Node(peer)
	if err != nil {
		return err
	}
	if !exists {
		n.Added = now
	}
	n.Subscriptions = mergeSubscriptions(n.Subscriptions, subs, mode != modeUpdate, now)
	return tx.PutNode(n)
}

// revertLink puts the peer's record back after a failed call. After a
// timeout a notice stays, so the peer — which may have applied the call —
// is brought back to the restored record; it is a new notice, which a late
// confirmation of the abandoned call's intent cannot drop.
func (o *Ops) revertLink(peer string, prev storage.Node, prevExists bool, notice storage.Notice, keepNotice bool) error {
	err := o.Store.Update(func(tx *storage.Tx) error {
		if keepNotice {
			renewed := storage.Notice{Peer: peer, Kind: notice.Kind, At: time.Now().UTC()}
			if renewed.At.Equal(notice.At) {
				renewed.At = renewed.At.Add(time.Nanosecond)
			}
			if err := tx.PutNotice(renewed); err != nil {
				return err
			}
		} else {
			if err := tx.DeleteNotice(peer); err != nil {
				return err
			}
		}
		if prevExists {
			return tx.PutNode(prev)
		}
		return tx.DeleteNode(peer)
	})
	o.Bus.Publish(events.NodesChanged)
	return err
}

func keySet(keys []storage.TableKey) map[storage.TableKey]bool {
	m := make(map[storage.TableKey]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// PeerSet is the peer side of add/update/configure: record the caller with
// the mirrored subscriptions, creating tables the caller holds and we do not.
func (o *Ops) PeerSet(ctx context.Context, from string, body []byte) (any, error) {
	var req peerSetRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_set request: %w", err)
	}
	reps, err := o.peerSetAll(from, []peerSetRequest{req}, req.Intent)
	if err != nil {
		return nil, err
	}
	return reps[0], nil
}

// PeerSetBatch applies several node_set requests from one caller, in order,
// in one transaction.
func (o *Ops) PeerSetBatch(ctx context.Context, from string, body []byte) (any, error) {
	var req peerSetBatch
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_set_batch request: %w", err)
	}
	reps, err := o.peerSetAll(from, req.Requests, req.Intent)
	if err != nil {
		return nil, err
	}
	return peerSetBatchReply{Replies: reps}, nil
}

// With an intent, peerSetAll answers once its write is queued and confirms
// to the caller when it is on disk.
func (o *Ops) peerSetAll(from string, reqs []peerSetRequest, intent string) ([]peerSetReply, error) {
	if !o.ClusteringEnabled {
		return nil, errors.New("Clustering must be enabled to perform this operation.")
	}
	if from == o.NodeName {
		return nil, errors.New("a node cannot add itself")
	}
	defer o.locks.lock(from)()
	var all []storage.Subscription
	for _, r := range reqs {
		all = append(all, r.Subscriptions...)
	}
	heldList, err := o.heldTables(all)
	if err != nil {
		return nil, err
	}
	held := keySet(heldList) // held before this call
	mine := keySet(heldList) // held once the requests so far are applied
	type step struct {
		kept    []storage.Subscription
		replace bool
	}
	var steps []step
	reps := make([]peerSetReply, len(reqs))
	for i, r := range reqs {
		theirs := keySet(r.CallerTables)
		rep := peerSetReply{CalleeTables: []storage.TableKey{}, Skipped: []storage.TableKey{}}
		var kept []storage.Subscription
		for _, s := range r.Subscriptions {
			if mine[s.Key()] {
				rep.CalleeTables = append(rep.CalleeTables, s.Key())
			}
			if !mine[s.Key()] && !theirs[s.Key()] {
				rep.Skipped = append(rep.Skipped, s.Key())
				continue
			}
			kept = append(kept, s)
		}
		reps[i] = rep
		if len(kept) == 0 && r.Mode != modeReplace {
			continue
		}
		for _, s := range kept {
			mine[s.Key()] = true
		}
		steps = append(steps, step{kept: kept, replace: r.Mode != modeUpdate})
	}
	if len(steps) == 0 {
		if intent != "" {
			prev, done := o.confirms.next(from)
			go o.confirmSynced(from, intent, nil, prev, done) // nothing to write
		}
		return reps, nil
	}
	now := time.Now()
	write := func(tx *storage.Tx) error {
		n, exists, err := tx.Node(from)
		if err != nil {
			return err
		}
		if !exists {
			n.Added = now
		}
		for _, st := range steps {
			for _, s := range st.kept {
				if !held[s.Key()] {
					if _, err := tx.PutTable(storage.Table{TableKey: s.Key(), Created: now}); err != nil {
						return err
					}
				}
			}
			n.Subscriptions = mergeSubscriptions(n.Subscriptions, st.kept, st.replace, now)
		}
		if err := tx.DeleteNotice(from); err != nil {
			return err
		}
		return tx.PutNode(n)
	}
	if intent == "" {
		err = o.Store.Update(write)
	} else {
		// The caller keeps its notice until we confirm: answer at once
		// (the write is queued in order, behind whatever this node's disk
		// is syncing) and confirm once it is on disk.
		var durable <-chan error
		if durable, err = o.Store.UpdateAsync(write); err == nil {
			prev, done := o.confirms.next(from)
			go o.confirmSynced(from, intent, durable, prev, done)
			return reps, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("record node %s: %w", from, err)
	}
	if len(reqs) == 1 && reqs[0].Mode == modeReplace {
		o.confirms.resynced(from) // the caller's whole record, as it is now
	}
	o.changed()
	return reps, nil
}

// changed wakes the workers after node records (and tables) changed.
func (o *Ops) changed() {
	o.Bus.Publish(events.NodesChanged)
	o.Bus.Publish(events.TablesChanged)
}

// confirmSynced wakes the workers once the write made for peer's intent is
// on disk and tells the peer so (synced nil: there was nothing to write).
// When the sync failed, or the confirmation does not arrive, the peer's
// notice stays and its notices worker re-syncs us. prev and done order it
// after the confirmation of the peer's previous intent (confirmChains).
func (o *Ops) confirmSynced(peer, intent string, synced <-chan error, prev <-chan struct{}, done chan<- struct{}) {
	var err error
	if synced != nil {
		err = <-synced
	}
	confirm := o.confirms.settle(peer, prev, err)
	close(done)
	if err != nil {
		return
	}
	if synced != nil {
		o.changed() // the workers act on what is written, so only now
	}
	if confirm {
		// One way: a lost confirmation only leaves the caller's notice to
		// re-sync us, and an answer would cost the mesh another round trip
		// per operation.
		_ = o.Peers.Notify(peer, callNodeSynced, nodeSynced{Intent: intent})
	}
}

// confirmChains orders, per caller, the confirmations of the writes made for
// its intents. Once one of those writes failed, no later intent of that
// caller is confirmed until it re-syncs us with its whole record: a later
// write carries only its own change, and confirming it would clear the
// caller's notice while we still miss the failed one.
type confirmChains struct {
	mu     sync.Mutex
	last   map[string]<-chan struct{} // caller -> its latest confirmation's done
	failed map[string]bool
}

// next returns the previous confirmation's done (nil when none) and the
// new one's. Called under the caller's node lock, in write order.
func (c *confirmChains) next(peer string) (prev <-chan struct{}, done chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]<-chan struct{}{}
	}
	done = make(chan struct{})
	prev = c.last[peer]
	c.last[peer] = done
	return prev, done
}

// settle waits for the previous confirmation, records a failed write and
// says whether this one may be confirmed.
func (c *confirmChains) settle(peer string, prev <-chan struct{}, err error) bool {
	if prev != nil {
		<-prev
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.failed == nil {
			c.failed = map[string]bool{}
		}
		c.failed[peer] = true
	}
	return err == nil && !c.failed[peer]
}

// resynced clears a failure once the caller has sent its whole record.
func (c *confirmChains) resynced(peer string) {
	c.mu.Lock()
	delete(c.failed, peer)
	c.mu.Unlock()
}

// PeerSynced is the caller's side of confirmSynced: the peer holds the
// write made for our notice on disk, so the notice may go (unless a later
// operation has replaced it). The deletion needs no sync of its own: if a
// crash loses it, the peer is re-synced to what it already holds.
func (o *Ops) PeerSynced(ctx context.Context, from string, body []byte) (any, error) {
	var req nodeSynced
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_synced request: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, req.Intent)
	if err != nil {
		return nil, fmt.Errorf("bad node_synced intent %q: %w", req.Intent, err)
	}
	o.Store.DeleteNoticeLater(storage.Notice{Peer: from, Kind: "sync", At: at})
	return nil, nil
}

// PeerRemove is the peer side of remove_node: forget the caller.
func (o *Ops) PeerRemove(ctx context.Context, from string, _ []byte) (any, error) {
	defer o.locks.lock(from)()
	err := o.Store.Update(func(tx *storage.Tx) error {
		_, exists, err := tx.Node(from)
		if err != nil {
			return err
		}
		if !exists {
			return storage.ErrNoChange
		}
		return tx.DeleteNode(from)
	})
	if err != nil {
		return nil, err
	}
	o.Bus.Publish(events.NodesChanged)
	return map[string]bool{"removed": true}, nil
}

var removeNodeSchema = Schema{{Name: "node_name", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen}}

// RemoveNodeReply is remove_node's reply.
type RemoveNodeReply struct {
	Message string `json:"message"`
}

// RemoveNode forgets a peer here, and tells the peer; when the peer cannot be
// reached the notice is kept and delivered when it returns.
func (o *Ops) RemoveNode(ctx context.Context, _ events.Caller, body []byte) (any, error) {
	if !o.ClusteringEnabled {
		return nil, errClusteringDisabled
	}
	var req struct {
		NodeName string `json:"node_name"`
	}
	if err := decodeInto(body, removeNodeSchema, &req); err != nil {
		return nil, err
	}
	defer o.locks.lock(req.NodeName)()
	notice := storage.Notice{Peer: req.NodeName, Kind: "remove", At: time.Now().UTC()}
	err := o.Store.Update(func(tx *storage.Tx) error {
		_, exists, err := tx.Node(req.NodeName)
		if err != nil {
			return err
		}
		if !exists {
			return events.Errorf(400, "Node '%s' was not found.", req.NodeName)
		}
		if err := tx.DeleteNode(req.NodeName); err != nil {
			return err
		}
		return tx.PutNotice(notice)
	})
	if err != nil {
		return nil, err
	}
	o.Bus.Publish(events.NodesChanged)
	if err := o.deliverNotice(ctx, notice); err != nil {
		o.log().Warn("remove_node: removed locally, the remote node was not told; it is told once it answers",
			zap.String("op", "remove_node"), zap.String("peer", req.NodeName), zap.Error(err))
		return RemoveNodeReply{Message: "Successfully removed '" + req.NodeName + "' from local manifest, however there was an error reaching remote node. Check the logs for more details."}, nil
	}
	return RemoveNodeReply{Message: "Successfully removed '" + req.NodeName + "' from manifest"}, nil
}

// ErrNoticeNotDue means a notice is too fresh to deliver: it belongs to an
// operation still in flight, which settles it itself.
var ErrNoticeNotDue = errors.New("notice belongs to an operation in flight")

// DeliverNotice brings the peer's record of this node in line with ours (the
// notices worker calls it until it succeeds): no record here means the peer
// must forget us; a record means the peer must hold its mirror image.
// Notices younger than minAge are left to the operation that wrote them.
func (o *Ops) DeliverNotice(ctx context.Context, n storage.Notice, minAge time.Duration) error {
	if time.Since(n.At) < minAge {
		return ErrNoticeNotDue
	}
	defer o.locks.lock(n.Peer)()
	return o.deliverNotice(ctx, n)
}

func (o *Ops) deliverNotice(ctx context.Context, n storage.Notice) error {
	rec, exists, err := o.Store.Node(n.Peer)
	if err != nil {
		return err
	}
	if !exists {
		err = o.Peers.Call(ctx, n.Peer, callNodeRemove, struct{}{}, nil)
	} else {
		var mine []storage.TableKey
		if mine, err = o.heldTables(rec.Subscriptions); err == nil {
			err = o.Peers.Call(ctx, n.Peer, callNodeSet, peerSetRequest{Mode: modeReplace, Subscriptions: mirrorAll(rec.Subscriptions), CallerTables: mine}, nil)
		}
	}
	if err != nil {
		return err
	}
	return o.Store.DeleteNoticeIf(n)
}

// owe records that the peer's view may differ from ours after a call whose
// outcome is unknown (it timed out: the peer may have applied it or not).
func (o *Ops) owe(peer string) {
	n := storage.Notice{Peer: peer, Kind: "sync", At: time.Now().UTC()}
	if err := o.Store.Update(func(tx *storage.Tx) error { return tx.PutNotice(n) }); err == nil {
		o.Bus.Publish(events.NodesChanged)
	}
}

// PeerHandlers returns the inter-node calls this node answers.
func (o *Ops) PeerHandlers() map[string]events.PeerHandler {
	return map[string]events.PeerHandler{
		callNodeSet:      o.PeerSet,
		callNodeSetBatch: o.PeerSetBatch,
		callNodeRemove:   o.PeerRemove,
		callNodeSynced:   o.PeerSynced,
		callStatus:       o.PeerStatus,
		callNetwork:      o.PeerNetwork,
	}
}

func (o *Ops) configureSchema() Schema {
	return Schema{
		{Name: "connections", Kind: kArray, Required: true, Items: o.nodeSchema()},
	}
}

// ConfigureConnection is one node's outcome in configure_cluster's reply.
type ConfigureConnection struct {
	NodeName string       `json:"node_name"`
	Response AddNodeReply `json:"response"`
}

// ConfigureClusterReply is configure_cluster's reply.
type ConfigureClusterReply struct {
	Message     string                `json:"message"`
	Connections []ConfigureConnection `json:"connections"`
	FailedNodes []string              `json:"failed_nodes,omitempty"`
}

// ConfigureCluster replaces the whole setup. Peers are told first; then the
// local desired state switches in one transaction, so a crash leaves either
// the old setup or the new one.
func (o *Ops) ConfigureCluster(ctx context.Context, _ events.Caller, body []byte) (any, error) {
	if !o.ClusteringEnabled {
		return nil, errClusteringDisabled
	}
	var req struct {
		Connections []nodeRequest `json:"connections"`
	}
	if err := decodeInto(body, o.configureSchema(), &req); err != nil {
		return nil, err
	}
	var problems []string
	seen := map[string]bool{}
	for i, c := range req.Connections {
		problems = append(problems, requireActive(fmt.Sprintf("connections[%d].", i), c.Subscriptions)...)
		if seen[c.NodeName] {
			problems = append(problems, fmt.Sprintf("'connections[%d].node_name' '%s' is listed more than once", i, c.NodeName))
		}
		seen[c.NodeName] = true
	}
	if err := validationError(problems); err != nil {
		return nil, err
	}
	o.locks.all.Lock()
	defer o.locks.all.Unlock()

	old, err := o.Store.Nodes()
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	// Intent first: should we crash while peers are being told, the notices
	// bring every peer involved back in line with whichever setup we hold.
	intent := map[string]storage.Notice{}
	for _, n := range old {
		intent[n.Name] = storage.Notice{Peer: n.Name, Kind: "sync", At: time.Now().UTC()}
	}
	for _, c := range req.Connections {
		intent[c.NodeName] = storage.Notice{Peer: c.NodeName, Kind: "sync", At: time.Now().UTC()}
	}
	if len(intent) > 0 {
		err := o.Store.Update(func(tx *storage.Tx) error {
			for _, nt := range intent {
				if err := tx.PutNotice(nt); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("record intent: %w", err)
		}
	}
	type outcome struct {
		name          string
		subs, skipped []storage.Subscription
		mine          []storage.TableKey
		err           error
		timedOut      bool // the peer may have applied it: keep its notice
	}
	results := make([]outcome, len(req.Connections))
	var wg sync.WaitGroup
	for i, c := range req.Connections {
		subs := make([]storage.Subscription, len(c.Subscriptions))
		for j, s := range c.Subscriptions {
			subs[j] = s.toStorage()
		}
		wg.Add(1)
		go func(i int, name string, subs []storage.Subscription) {
			defer wg.Done()
			r := outcome{name: name}
			defer func() { results[i] = r }()
			if r.mine, r.err = o.heldTables(subs); r.err != nil {
				return
			}
			var rep peerSetReply
			if err := o.Peers.Call(ctx, name, callNodeSet, peerSetRequest{Mode: modeReplace, Subscriptions: mirrorAll(subs), CallerTables: r.mine}, &rep); err != nil {
				r.timedOut = errors.Is(err, events.ErrNoResponse)
				r.err = peerError("configure_cluster", name, err)
				return
			}
			skip := keySet(rep.Skipped)
			for _, s := range subs {
				if skip[s.Key()] {
					r.skipped = append(r.skipped, s)
				} else {
					r.subs = append(r.subs, s)
				}
			}
			if len(r.subs) == 0 {
				r.err = errors.New("no subscription could be created: tables exist on neither node")
			}
		}(i, c.NodeName, subs)
	}
	// Old peers that are not in the new setup are told to forget us; those
	// that cannot be reached get a notice delivered later.
	wg.Wait()
	failed := map[string]bool{}
	oldNames := map[string]bool{}
	for _, n := range old {
		oldNames[n.Name] = true
	}
	// Notices of peers that surely did not apply anything and are not old
	// peers are dropped; the rest settle below or stay to be delivered.
	settled := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			o.log().Warn("configure_cluster: node not configured", zap.String("op", "configure_cluster"), zap.String("peer", r.name), zap.Error(r.err))
			failed[r.name] = true
			if !r.timedOut && !oldNames[r.name] {
				settled[r.name] = true
			}
		}
	}
	dropSettled := func(tx *storage.Tx) error {
		for name := range settled {
			if err := tx.DeleteNotice(name); err != nil {
				return err
			}
		}
		return nil
	}
	if len(failed) > 0 && len(failed) == len(results) {
		// Nothing of the new setup could be made: keep the old one whole
		// (old peers' notices re-sync them with it).
		_ = o.Store.Update(dropSettled)
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, &events.Error{Status: 500, Message: "Failed to configure the cluster. Check the logs for more details.", Extra: map[string]any{"failed_nodes": names}}
	}
	var removed []storage.Notice
	for _, n := range old {
		if !seen[n.Name] || failed[n.Name] {
			removed = append(removed, storage.Notice{Peer: n.Name, Kind: "remove", At: time.Now().UTC()})
		}
	}

	now := time.Now()
	oldByName := map[string]storage.Node{}
	for _, n := range old {
		oldByName[n.Name] = n
	}
	err = o.Store.Update(func(tx *storage.Tx) error {
		for _, n := range old {
			if err := tx.DeleteNode(n.Name); err != nil {
				return err
			}
		}
		for _, r := range results {
			if r.err != nil {
				continue
			}
			have := keySet(r.mine)
			for _, s := range r.subs {
				if !have[s.Key()] {
					if _, err := tx.PutTable(storage.Table{TableKey: s.Key(), Created: now}); err != nil {
						return err
					}
				}
			}
			prev := oldByName[r.name]
			n := storage.Node{Name: r.name, Added: now, Subscriptions: mergeSubscriptions(prev.Subscriptions, r.subs, true, now)}
			if !prev.Added.IsZero() {
				n.Added = prev.Added
			}
			if err := tx.DeleteNotice(r.name); err != nil {
				return err
			}
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		for _, nt := range removed {
			if err := tx.PutNotice(nt); err != nil {
				return err
			}
		}
		return dropSettled(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("switch cluster configuration: %w", err)
	}
	o.Bus.Publish(events.NodesChanged)
	o.Bus.Publish(events.TablesChanged)
	for _, nt := range removed {
		_ = o.deliverNotice(ctx, nt) // the notices worker retries failures
	}

	reply := ConfigureClusterReply{Message: "Configure cluster complete.", Connections: []ConfigureConnection{}}
	for _, r := range results {
		if r.err != nil {
			reply.FailedNodes = append(reply.FailedNodes, r.name)
			continue
		}
		msg := "Successfully added '" + r.name + "' to manifest"
		if len(r.skipped) > 0 {
			msg = "Some subscriptions were unsuccessful due to schema and/or tables not existing on the local or remote node"
		}
		reply.Connections = append(reply.Connections, ConfigureConnection{NodeName: r.name, Response: AddNodeReply{Message: msg, Added: outs(r.subs), Skipped: outs(r.skipped)}})
	}
	sort.Strings(reply.FailedNodes)
	if len(reply.FailedNodes) > 0 {
		reply.Message = "Configure cluster was partially successful. Errors occurred when attempting to configure the following nodes. Check the logs for more details."
	}
	return reply, nil
}
