package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// Handlers returns the inter-node calls of the protocol this node answers.
func (p *Protocol) Handlers() map[string]events.PeerHandler {
	return map[string]events.PeerHandler{
		CallNodeSet:      p.peerSet,
		CallNodeSetBatch: p.peerSetBatch,
		CallNodeRemove:   p.peerRemove,
		CallNodeSynced:   p.peerSynced,
	}
}

// peerSet is the peer side of add/update/configure: record the caller with
// the mirrored subscriptions, creating tables the caller holds and we do not.
func (p *Protocol) peerSet(ctx context.Context, from string, body []byte) (any, error) {
	var req peerSetRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_set request: %w", err)
	}
	reps, err := p.peerSetAll(ctx, from, []peerSetRequest{req}, req.Intent)
	if err != nil {
		return nil, err
	}
	return reps[0], nil
}

// peerSetBatch applies several node_set requests from one caller, in order,
// in one transaction.
func (p *Protocol) peerSetBatch(ctx context.Context, from string, body []byte) (any, error) {
	var req peerSetBatch
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_set_batch request: %w", err)
	}
	reps, err := p.peerSetAll(ctx, from, req.Requests, req.Intent)
	if err != nil {
		return nil, err
	}
	return peerSetBatchReply{Replies: reps}, nil
}

func (p *Protocol) calleeCheck(from string) error {
	if !p.cfg.Enabled {
		return errors.New("Clustering must be enabled to perform this operation.")
	}
	if from == p.cfg.Self {
		return errors.New("a node cannot add itself")
	}
	return p.checkRunning()
}

// With an intent, peerSetAll answers once its write is queued and confirms
// to the caller when it is on disk.
func (p *Protocol) peerSetAll(ctx context.Context, from string, reqs []peerSetRequest, intent string) ([]peerSetReply, error) {
	if err := p.calleeCheck(from); err != nil {
		return nil, err
	}
	release, err := p.calleeLock(ctx, from)
	if err != nil {
		return nil, err
	}
	defer release()
	var all []storage.Subscription
	for _, r := range reqs {
		all = append(all, r.Subscriptions...)
	}
	heldList, err := p.heldTables(all)
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
		if len(kept) == 0 && r.Mode != Replace {
			continue
		}
		for _, s := range kept {
			mine[s.Key()] = true
		}
		steps = append(steps, step{kept: kept, replace: r.Mode != Update})
	}
	if len(steps) == 0 {
		if intent != "" {
			p.confirmLater(from, intent, nil) // nothing to write
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
		err = p.cfg.Store.Update(write)
	} else {
		// The caller keeps its notice until we confirm: answer at once
		// (the write is queued in order, behind whatever this node's disk
		// is syncing) and confirm once it is on disk.
		var durable <-chan error
		if durable, err = p.cfg.Store.UpdateAsync(write); err == nil {
			p.confirmLater(from, intent, durable)
			return reps, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("record node %s: %w", from, err)
	}
	if len(reqs) == 1 && reqs[0].Mode == Replace {
		p.confirms.resynced(from) // the caller's whole record, as it is now
	}
	return reps, nil
}

// confirmLater confirms the caller's intent once synced reports (nil:
// nothing was written), in order after its previous intents. Called under
// the caller's pair lock, in write order. Should the protocol be stopping,
// nothing is confirmed: the caller's notice re-syncs us.
func (p *Protocol) confirmLater(peer, intent string, synced <-chan error) {
	prev, done := p.confirms.next(peer)
	if !p.goTracked(func(context.Context) { p.confirmSynced(peer, intent, synced, prev, done) }) {
		p.confirms.settle(peer, prev, ErrStopping)
		close(done)
		p.confirms.finished(peer, done)
	}
}

// confirmSynced wakes the workers once the write made for peer's intent is
// on disk and tells the peer so (synced nil: there was nothing to write).
// When the sync failed, or the confirmation does not arrive, the peer's
// notice stays and its notices worker re-syncs us. prev and done order it
// after the confirmation of the peer's previous intent (confirmChains).
func (p *Protocol) confirmSynced(peer, intent string, synced <-chan error, prev <-chan struct{}, done chan struct{}) {
	var err error
	if synced != nil {
		err = <-synced
	}
	confirm := p.confirms.settle(peer, prev, err)
	close(done)
	p.confirms.finished(peer, done)
	if err != nil {
		return
	}
	if confirm {
		// One way: a lost confirmation only leaves the caller's notice to
		// re-sync us, and an answer would cost the mesh another round trip
		// per operation.
		_ = p.cfg.Peers.Notify(peer, CallNodeSynced, nodeSynced{Intent: intent})
	}
}

// confirmChains orders, per caller, the confirmations of the writes made for
// its intents. Once one of those writes failed, no later intent of that
// caller is confirmed until it re-syncs us with its whole record: a later
// write carries only its own change, and confirming it would clear the
// caller's notice while we still miss the failed one. A caller's entry
// lives while confirmations are pending or a failure is remembered.
type confirmChains struct {
	mu     sync.Mutex
	last   map[string]<-chan struct{} // caller -> its latest confirmation's done
	failed map[string]bool
}

// next returns the previous confirmation's done (nil when none) and the
// new one's. Called under the caller's pair lock, in write order.
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

// finished forgets the caller's chain when done is still its latest link
// (nothing queued behind it), so the map holds only callers with
// confirmations in flight.
func (c *confirmChains) finished(peer string, done <-chan struct{}) {
	c.mu.Lock()
	if c.last[peer] == done {
		delete(c.last, peer)
	}
	c.mu.Unlock()
}

// resynced clears a failure once the caller has sent its whole record.
func (c *confirmChains) resynced(peer string) {
	c.mu.Lock()
	delete(c.failed, peer)
	c.mu.Unlock()
}

// peerSynced is the caller's side of confirmSynced: the peer holds the
// write made for our notice on disk, so the notice may go (unless a later
// operation has replaced it). The deletion needs no sync of its own: if a
// crash loses it, the peer is re-synced to what it already holds.
func (p *Protocol) peerSynced(ctx context.Context, from string, body []byte) (any, error) {
	var req nodeSynced
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("bad node_synced request: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, req.Intent)
	if err != nil {
		return nil, fmt.Errorf("bad node_synced intent %q: %w", req.Intent, err)
	}
	p.cfg.Store.DeleteNoticeLater(storage.Notice{Peer: from, Kind: "sync", At: at})
	return nil, nil
}

// peerRemove is the peer side of remove_node: forget the caller.
func (p *Protocol) peerRemove(ctx context.Context, from string, _ []byte) (any, error) {
	if err := p.checkRunning(); err != nil {
		return nil, err
	}
	release, err := p.calleeLock(ctx, from)
	if err != nil {
		return nil, err
	}
	defer release()
	err = p.cfg.Store.Update(func(tx *storage.Tx) error {
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
	return map[string]bool{"removed": true}, nil
}
