package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

// LinkResult is what a link recorded: the subscriptions added on both
// nodes, and those skipped because the table exists on neither.
type LinkResult struct {
	Added, Skipped []storage.Subscription
}

// Link records subscriptions with peer on both nodes (add_node with Add,
// update_node with Update). Add fails with ErrExists when peer is recorded
// already. A peer that keeps answering busy makes it retry for up to
// RetryFor, then fail with *BusyError; a failed call is a *PeerError, and
// this node's record is as it was before.
func (p *Protocol) Link(ctx context.Context, peer string, subs []storage.Subscription, mode Mode) (LinkResult, error) {
	if err := p.checkRunning(); err != nil {
		return LinkResult{}, err
	}
	if mode == Update {
		// Tables are never dropped, so "all held" stays true once seen.
		mine, err := p.heldTables(subs)
		if err != nil {
			return LinkResult{}, fmt.Errorf("load tables: %w", err)
		}
		if len(mine) == len(subs) {
			if err := p.queueLink(peer, subs); err != nil {
				return LinkResult{}, err
			}
			return LinkResult{Added: subs}, nil
		}
	}
	var res LinkResult
	err := p.retryBusy(ctx, peer, func(ctx context.Context) error {
		release, err := p.locks.acquire(ctx, peer, true)
		if err != nil {
			return err
		}
		defer release()
		if mode == Add {
			if _, ok, err := p.cfg.Store.Node(peer); err != nil {
				return fmt.Errorf("load node %s: %w", peer, err)
			} else if ok {
				return ErrExists
			}
		}
		res, err = p.linkPeer(ctx, peer, subs, mode)
		return err
	})
	return res, err
}

// linkPeer records subscriptions with a peer on both nodes, under the
// pair's lock. A "sync" notice is written before the peer is told, in the
// same transaction as the local record when every table is held here (then
// nothing can be skipped and the local commit runs concurrently with the
// peer's), else on its own. Whatever happens after that — a peer error, a
// timeout, a crash — the notices worker later brings the peer's record in
// line with ours, so the two never stay half-made. On a peer error the
// local record is put back as it was.
func (p *Protocol) linkPeer(ctx context.Context, peer string, subs []storage.Subscription, mode Mode) (LinkResult, error) {
	mine, err := p.heldTables(subs)
	if err != nil {
		return LinkResult{}, fmt.Errorf("load tables: %w", err)
	}
	have := keySet(mine)
	allHeld := true
	for _, s := range subs {
		allHeld = allHeld && have[s.Key()]
	}
	if allHeld {
		if err := p.linkHeld(ctx, peer, mode, [][]storage.Subscription{subs}); err != nil {
			return LinkResult{}, err
		}
		return LinkResult{Added: subs}, nil
	}

	now := time.Now()
	notice := storage.Notice{Peer: peer, Kind: "sync", At: now.UTC()}
	req := peerSetRequest{Mode: mode, Subscriptions: mirrorAll(subs), CallerTables: mine}
	if err := p.cfg.Store.Update(func(tx *storage.Tx) error { return tx.PutNotice(notice) }); err != nil {
		return LinkResult{}, fmt.Errorf("record intent for node %s: %w", peer, err)
	}
	var rep peerSetReply
	if err := p.cfg.Peers.Call(ctx, peer, CallNodeSet, req, &rep); err != nil {
		maybe := errors.Is(err, events.ErrNoResponse)
		if !maybe {
			p.cfg.Store.DeleteNoticeLater(notice)
		}
		return LinkResult{}, peerCallError(peer, err, maybe)
	}
	var res LinkResult
	skip := keySet(rep.Skipped)
	for _, s := range subs {
		if skip[s.Key()] {
			res.Skipped = append(res.Skipped, s)
		} else {
			res.Added = append(res.Added, s)
		}
	}
	if len(res.Added) == 0 && mode != Replace {
		p.cfg.Store.DeleteNoticeLater(notice)
		return res, nil
	}
	err = p.cfg.Store.Update(func(tx *storage.Tx) error {
		if err := applyLink(tx, peer, res.Added, have, mode, now); err != nil {
			return err
		}
		return tx.DeleteNotice(peer)
	})
	if err != nil {
		return LinkResult{}, fmt.Errorf("record node %s: %w", peer, err)
	}
	return res, nil
}

// linkHeld records one or more requests' subscriptions with a peer on both
// nodes, in order, when every table is held here (so nothing can be
// skipped), under the pair's lock. The "sync" notice and the record are
// committed locally first — so a crash of this process after the peer is
// told still finds the notice and re-syncs the peer — and the peer is told
// while that commit is being synced, the sync and the round trip
// overlapping; the peer answers without waiting for its disk (it confirms
// that later, and only then does the notice go). A peer failure (busy
// included) puts our record back as it was.
func (p *Protocol) linkHeld(ctx context.Context, peer string, mode Mode, batches [][]storage.Subscription) error {
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
	synced, err := p.cfg.Store.UpdateThenSync(func(tx *storage.Tx) error {
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
			n.Subscriptions = mergeSubscriptions(n.Subscriptions, subs, mode != Update, now)
		}
		return tx.PutNode(n)
	})
	if err != nil {
		return fmt.Errorf("record node %s: %w", peer, err)
	}
	maybeApplied, peerErr := p.tellPeer(ctx, peer, reqs, intent)
	syncErr := <-synced
	switch {
	case syncErr != nil:
		// Not durable here; the notice (if it survives) re-syncs the peer.
		return fmt.Errorf("record node %s: %w", peer, syncErr)
	case peerErr != nil:
		if err := p.revertLink(peer, prev, prevExists, notice, maybeApplied); err != nil {
			return fmt.Errorf("put back node %s after a failed call (%v): %w", peer, peerErr, err)
		}
		return peerCallError(peer, peerErr, maybeApplied)
	}
	return nil
}

// tellPeer sends reqs to peer in one call. A peer running an older clusterd,
// which does not know node_set_batch, gets them one node_set at a time.
// maybeApplied says the peer may hold some of them despite the error (a
// timeout, or a failure after the first of several calls): its notice must
// stay.
func (p *Protocol) tellPeer(ctx context.Context, peer string, reqs []peerSetRequest, intent string) (maybeApplied bool, err error) {
	if len(reqs) == 1 {
		err = p.cfg.Peers.Call(ctx, peer, CallNodeSet, reqs[0], nil)
		return errors.Is(err, events.ErrNoResponse), err
	}
	err = p.cfg.Peers.Call(ctx, peer, CallNodeSetBatch, peerSetBatch{Requests: reqs, Intent: intent}, nil)
	if !events.HasCode(err, events.CodeUnknownCall) {
		return errors.Is(err, events.ErrNoResponse), err
	}
	for i, r := range reqs {
		if err := p.cfg.Peers.Call(ctx, peer, CallNodeSet, r, nil); err != nil {
			if i > 0 && events.HasCode(err, events.CodeBusy) {
				// Part applied: not a clean busy, the notice re-syncs it.
				err = fmt.Errorf("busy after %d of %d changes: %w", i, len(reqs), err)
				return true, &events.RemoteError{Message: err.Error()}
			}
			return i > 0 || errors.Is(err, events.ErrNoResponse), err
		}
	}
	return false, nil
}

// Batching. Operations about one peer are serialized (locks), so
// concurrent update_node requests for the same peer would each wait for the
// previous one's peer round trip and both nodes' synced writes. Instead,
// requests whose tables are all held here queue per peer; one runner takes
// everything queued, records it with one peer call and one local
// transaction (applied in arrival order on both nodes, as if one after the
// other), answers each request, and goes on with what queued meanwhile.

// maxLinkBatch bounds the requests one peer call carries.
const maxLinkBatch = 256

type linkReq struct {
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
// both nodes hold them (or the batch failed).
func (p *Protocol) queueLink(peer string, subs []storage.Subscription) error {
	r := &linkReq{subs: subs, done: make(chan error, 1)}
	p.links.mu.Lock()
	if p.links.q == nil {
		p.links.q = map[string]*linkQueue{}
	}
	q := p.links.q[peer]
	if q == nil {
		q = &linkQueue{}
		p.links.q[peer] = q
	}
	q.pending = append(q.pending, r)
	if !q.running {
		if !p.goTracked(func(ctx context.Context) { p.runLinks(ctx, peer, q) }) {
			q.pending = q.pending[:len(q.pending)-1]
			if len(q.pending) == 0 {
				delete(p.links.q, peer)
			}
			p.links.mu.Unlock()
			return ErrStopping
		}
		q.running = true
	}
	p.links.mu.Unlock()
	return <-r.done
}

// runLinks serves peer's queue until it is empty. Every request taken is
// answered, also when the protocol stops.
func (p *Protocol) runLinks(ctx context.Context, peer string, q *linkQueue) {
	for {
		p.links.mu.Lock()
		n := min(len(q.pending), maxLinkBatch)
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		if n == 0 {
			q.running = false
			delete(p.links.q, peer)
			p.links.mu.Unlock()
			return
		}
		p.links.mu.Unlock()
		subs := make([][]storage.Subscription, n)
		for i, r := range batch {
			subs[i] = r.subs
		}
		err := p.retryBusy(ctx, peer, func(ctx context.Context) error {
			release, err := p.locks.acquire(ctx, peer, true)
			if err != nil {
				return err
			}
			defer release()
			return p.linkHeld(ctx, peer, Update, subs)
		})
		if err != nil && ctx.Err() != nil {
			err = ErrStopping
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// applyLink writes the peer's record with subs applied, creating the tables
// that are not held here yet.
func applyLink(tx *storage.Tx, peer string, subs []storage.Subscription, have map[storage.TableKey]bool, mode Mode, now time.Time) error {
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
	n.Subscriptions = mergeSubscriptions(n.Subscriptions, subs, mode != Update, now)
	return tx.PutNode(n)
}

// revertLink puts the peer's record back after a failed call. After a
// timeout a notice stays, so the peer — which may have applied the call —
// is brought back to the restored record; it is a new notice, which a late
// confirmation of the abandoned call's intent cannot drop.
func (p *Protocol) revertLink(peer string, prev storage.Node, prevExists bool, notice storage.Notice, keepNotice bool) error {
	err := p.cfg.Store.Update(func(tx *storage.Tx) error {
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
	return err
}
