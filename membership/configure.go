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

// Connection is one node of configure_cluster's new setup.
type Connection struct {
	Name          string
	Subscriptions []storage.Subscription
}

// ConnectionResult is one connection's outcome. Err is a *PeerError, or
// says that no subscription could be made (tables exist on neither node).
type ConnectionResult struct {
	Name    string
	Added   []storage.Subscription
	Skipped []storage.Subscription
	Err     error
}

// errNothingCreated: no subscription of a connection could be created.
var errNothingCreated = errors.New("no subscription could be created: tables exist on neither node")

// Configure replaces the whole setup with conns (configure_cluster). Every
// peer is told first; then the local desired state switches in one
// transaction, so a crash leaves either the old setup or the new one. Old
// peers left out (or failed) are told to forget us, now or by a notice.
// Results come in conns' order; when every connection failed nothing is
// switched and the error is a *ConfigureError. A peer that keeps answering
// busy makes the whole switch retry, then fail with *BusyError.
func (p *Protocol) Configure(ctx context.Context, conns []Connection) ([]ConnectionResult, error) {
	if err := p.checkRunning(); err != nil {
		return nil, err
	}
	var results []ConnectionResult
	err := p.retryBusy(ctx, "", func(ctx context.Context) error {
		release, err := p.locks.acquireAll(ctx)
		if err != nil {
			return err
		}
		defer release()
		results, err = p.configure(ctx, conns)
		return err
	})
	return results, err
}

func (p *Protocol) configure(ctx context.Context, conns []Connection) ([]ConnectionResult, error) {
	old, err := p.cfg.Store.Nodes()
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	// Intent first: should we crash while peers are being told, the notices
	// bring every peer involved back in line with whichever setup we hold.
	intent := map[string]storage.Notice{}
	for _, n := range old {
		intent[n.Name] = storage.Notice{Peer: n.Name, Kind: "sync", At: time.Now().UTC()}
	}
	for _, c := range conns {
		intent[c.Name] = storage.Notice{Peer: c.Name, Kind: "sync", At: time.Now().UTC()}
	}
	if len(intent) > 0 {
		err := p.cfg.Store.Update(func(tx *storage.Tx) error {
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
		ConnectionResult
		mine     []storage.TableKey
		timedOut bool // the peer may have applied it: keep its notice
		busy     bool // the peer applied nothing: try the whole switch again
	}
	results := make([]outcome, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c Connection) {
			defer wg.Done()
			r := outcome{ConnectionResult: ConnectionResult{Name: c.Name}}
			defer func() { results[i] = r }()
			if r.mine, r.Err = p.heldTables(c.Subscriptions); r.Err != nil {
				return
			}
			var rep peerSetReply
			if err := p.cfg.Peers.Call(ctx, c.Name, CallNodeSet, peerSetRequest{Mode: Replace, Subscriptions: mirrorAll(c.Subscriptions), CallerTables: r.mine}, &rep); err != nil {
				r.timedOut = errors.Is(err, events.ErrNoResponse)
				r.busy = events.HasCode(err, events.CodeBusy)
				r.Err = &PeerError{Peer: c.Name, Err: err, MaybeApplied: r.timedOut}
				return
			}
			skip := keySet(rep.Skipped)
			for _, s := range c.Subscriptions {
				if skip[s.Key()] {
					r.Skipped = append(r.Skipped, s)
				} else {
					r.Added = append(r.Added, s)
				}
			}
			if len(r.Added) == 0 {
				r.Err = errNothingCreated
			}
		}(i, c)
	}
	wg.Wait()
	failed := map[string]bool{}
	oldNames := map[string]bool{}
	for _, n := range old {
		oldNames[n.Name] = true
	}
	// Notices of peers that surely did not apply anything and are not old
	// peers are dropped; the rest settle below or stay to be delivered.
	settled := map[string]bool{}
	var busyPeer string
	for _, r := range results {
		if r.Err != nil {
			failed[r.Name] = true
			if !r.timedOut && !oldNames[r.Name] {
				settled[r.Name] = true
			}
		}
		if r.busy {
			busyPeer = r.Name
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
	if busyPeer != "" || (len(failed) > 0 && len(failed) == len(results)) {
		// Nothing of the new setup is switched: keep the old one whole
		// (notices re-sync old peers, and peers told already, with it) —
		// for good, or until the retry of a switch a busy peer held up.
		if err := p.cfg.Store.Update(dropSettled); err != nil {
			return nil, fmt.Errorf("drop settled notices: %w", err)
		}
		if busyPeer != "" {
			return nil, &errPeerBusy{peer: busyPeer}
		}
		causes := map[string]error{}
		for _, r := range results {
			if r.Err != nil {
				causes[r.Name] = r.Err
			}
		}
		return nil, &ConfigureError{Failed: sortedNames(failed), Causes: causes}
	}
	seen := map[string]bool{}
	for _, c := range conns {
		seen[c.Name] = true
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
	err = p.cfg.Store.Update(func(tx *storage.Tx) error {
		for _, n := range old {
			if err := tx.DeleteNode(n.Name); err != nil {
				return err
			}
		}
		for _, r := range results {
			if r.Err != nil {
				continue
			}
			have := keySet(r.mine)
			for _, s := range r.Added {
				if !have[s.Key()] {
					if _, err := tx.PutTable(storage.Table{TableKey: s.Key(), Created: now}); err != nil {
						return err
					}
				}
			}
			prev := oldByName[r.Name]
			n := storage.Node{Name: r.Name, Added: now, Subscriptions: mergeSubscriptions(prev.Subscriptions, r.Added, true, now)}
			if !prev.Added.IsZero() {
				n.Added = prev.Added
			}
			if err := tx.DeleteNotice(r.Name); err != nil {
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
	for _, nt := range removed {
		_ = p.deliverNotice(ctx, nt) // the notices worker retries failures
	}
	out := make([]ConnectionResult, len(results))
	for i, r := range results {
		out[i] = r.ConnectionResult
	}
	return out, nil
}
