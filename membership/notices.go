package membership

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"go.uber.org/zap"
)

// Remove forgets peer here and tells the peer (remove_node). told is false
// when the peer could not be told: the record is gone here all the same, and
// a notice tells the peer once it can be reached. ErrNotFound when peer is
// not recorded. A peer that keeps answering busy makes it retry for up to
// RetryFor and then fail with *BusyError, the record back as it was.
func (p *Protocol) Remove(ctx context.Context, peer string) (told bool, err error) {
	if err := p.checkRunning(); err != nil {
		return false, err
	}
	err = p.retryBusy(ctx, peer, func(ctx context.Context) error {
		release, err := p.locks.acquire(ctx, peer, true)
		if err != nil {
			return err
		}
		defer release()
		notice := storage.Notice{Peer: peer, Kind: "remove", At: time.Now().UTC()}
		var prev storage.Node
		err = p.cfg.Store.Update(func(tx *storage.Tx) error {
			n, exists, err := tx.Node(peer)
			if err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
			prev = n
			if err := tx.DeleteNode(peer); err != nil {
				return err
			}
			return tx.PutNotice(notice)
		})
		if err != nil {
			return err
		}
		err = p.deliverNotice(ctx, notice)
		if events.HasCode(err, events.CodeBusy) {
			// The peer forgot nothing: put the record back and retry.
			err := p.cfg.Store.Update(func(tx *storage.Tx) error {
				if err := tx.DeleteNotice(peer); err != nil {
					return err
				}
				return tx.PutNode(prev)
			})
			if err != nil {
				return fmt.Errorf("put back node %s: %w", peer, err)
			}
			return &errPeerBusy{peer: peer}
		}
		told = err == nil
		if err != nil {
			p.cfg.Log.Warn("remove_node: removed locally, the remote node was not told; it is told once it answers",
				zap.String("op", "remove_node"), zap.String("peer", peer), zap.Error(err))
		}
		return nil
	})
	return told, err
}

// deliverNotice brings the peer's record of this node in line with ours,
// under the pair's lock: no record here means the peer must forget us; a
// record means the peer must hold its mirror image. The notice goes once
// delivered, unless a newer one replaced it meanwhile.
func (p *Protocol) deliverNotice(ctx context.Context, n storage.Notice) error {
	rec, exists, err := p.cfg.Store.Node(n.Peer)
	if err != nil {
		return err
	}
	if !exists {
		err = p.cfg.Peers.Call(ctx, n.Peer, CallNodeRemove, struct{}{}, nil)
	} else {
		var mine []storage.TableKey
		if mine, err = p.heldTables(rec.Subscriptions); err == nil {
			err = p.cfg.Peers.Call(ctx, n.Peer, CallNodeSet, peerSetRequest{Mode: Replace, Subscriptions: mirrorAll(rec.Subscriptions), CallerTables: mine}, nil)
		}
	}
	if err != nil {
		return err
	}
	return p.cfg.Store.DeleteNoticeIf(n)
}

// ReconcileNotices is the outbox's reconciler (run by a topology.Loop):
// it delivers every notice old enough to no longer belong to an operation
// in flight. It fails while any notice is undelivered, so the loop retries
// with backoff and reports what is owed to whom.
func (p *Protocol) ReconcileNotices(ctx context.Context) (changed bool, err error) {
	notices, err := p.cfg.Store.Notices()
	if err != nil {
		return false, err
	}
	var failed []string
	delivered := 0
	for _, nt := range notices {
		if time.Since(nt.At) < p.cfg.NoticeMinAge {
			continue // the next resync comes back for it
		}
		if err := p.deliverHeld(ctx, nt); err != nil {
			failed = append(failed, nt.Peer+": "+err.Error())
			continue
		}
		delivered++
		p.cfg.Log.Info("delivered notice", zap.String("peer", nt.Peer), zap.String("kind", nt.Kind))
	}
	if len(failed) > 0 {
		return delivered > 0, fmt.Errorf("notices not delivered yet: %s", strings.Join(failed, "; "))
	}
	return delivered > 0, nil
}

func (p *Protocol) deliverHeld(ctx context.Context, nt storage.Notice) error {
	release, err := p.locks.acquire(ctx, nt.Peer, true)
	if err != nil {
		return err
	}
	defer release()
	return p.deliverNotice(ctx, nt)
}

// NoticeBacklog counts the notices still owed to peers.
func (p *Protocol) NoticeBacklog() int {
	ns, err := p.cfg.Store.Notices()
	if err != nil {
		return 0
	}
	return len(ns)
}
