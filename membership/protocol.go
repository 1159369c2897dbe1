package membership

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"go.uber.org/zap"
)

// Peers reaches other nodes' inter-node calls.
type Peers interface {
	Call(ctx context.Context, node, call string, req, resp any) error
	Notify(node, call string, req any) error
}

// Config is what the protocol needs.
type Config struct {
	Self string
	// Enabled is clustering.enabled: when false, peers' calls are refused.
	Enabled bool
	Store   *storage.Store
	Peers   Peers
	// RetryFor bounds how long an operation retries while the peer answers
	// busy (default 2 s, clustering.requestTimeout); a callee waits for its
	// lock at most half of it.
	RetryFor time.Duration
	// NoticeMinAge: younger notices belong to an operation still in flight,
	// which settles them itself (default RetryFor + 1 s).
	NoticeMinAge time.Duration
	Log          *zap.Logger
}

// Protocol is one node's side of the node-record protocol. Its operations
// are safe for concurrent use; Run owns the goroutines they start.
type Protocol struct {
	cfg      Config
	locks    locks
	links    linkQueues
	confirms confirmChains

	base   context.Context // the goroutines' context; ends when Run stops
	cancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	wg       sync.WaitGroup
}

// New returns a protocol ready to serve; call Run to own its lifetime.
func New(cfg Config) *Protocol {
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Second
	}
	if cfg.NoticeMinAge <= 0 {
		cfg.NoticeMinAge = cfg.RetryFor + time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Protocol{cfg: cfg}
	p.base, p.cancel = context.WithCancel(context.Background())
	return p
}

// Run returns once ctx ends, after every goroutine the protocol started
// (batch runners, confirmations) has finished; operations arriving after
// that fail with ErrStopping. Stop the intake first: operations in flight
// see their context end.
func (p *Protocol) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-p.base.Done():
	}
	p.Stop()
	return nil
}

// Stop is Run's ending, for callers that never ran it (tests): it refuses
// new operations, ends the goroutines' context and waits for them.
func (p *Protocol) Stop() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// goTracked runs fn in a goroutine Run waits for; false when stopping.
func (p *Protocol) goTracked(fn func(ctx context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn(p.base)
	}()
	return true
}

func (p *Protocol) checkRunning() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return ErrStopping
	}
	return nil
}

// retryBusy runs attempt until it returns anything but errPeerBusy, backing
// off with jitter (2 ms doubling to 64 ms) between tries, for at most
// RetryFor; then it fails with *BusyError. attempt must hold nothing when
// it returns errPeerBusy (its change put back, its lock released), so the
// peer's own operation about us can finish meanwhile.
func (p *Protocol) retryBusy(ctx context.Context, peer string, attempt func(ctx context.Context) error) error {
	start := time.Now()
	backoff := 2 * time.Millisecond
	for tries := 1; ; tries++ {
		err := attempt(ctx)
		var busy *errPeerBusy
		if !errors.As(err, &busy) {
			if errors.Is(err, context.Canceled) && p.base.Err() != nil {
				return ErrStopping // the protocol stopped under it
			}
			return err
		}
		if time.Since(start) >= p.cfg.RetryFor {
			p.cfg.Log.Info("peer kept answering busy", zap.String("peer", busy.peer), zap.Int("tries", tries))
			return &BusyError{Peer: busy.peer, Tries: tries}
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &BusyError{Peer: busy.peer, Tries: tries}
		case <-p.base.Done():
			t.Stop()
			return ErrStopping
		}
		backoff = min(2*backoff, 64*time.Millisecond)
	}
}

// calleeLock takes this node's lock for the caller's pair when serving the
// caller's call, without ever waiting for a node that may be waiting for
// us. The caller holds its own lock for us while it waits for our answer,
// and our lock may be held by our own operation about the caller, waiting
// for the caller's answer: both waiting would deadlock. So only the node
// whose name sorts after the caller's waits (at most RetryFor/2, well
// within the caller's timeout); the other answers busy at once, and the
// caller puts its change back, lets go and retries. A chain of waits then
// always climbs the name order and cannot close into a cycle.
func (p *Protocol) calleeLock(ctx context.Context, caller string) (release func(), err error) {
	if p.cfg.Self < caller {
		release, err = p.locks.acquire(ctx, caller, false)
	} else {
		wctx, cancel := context.WithTimeout(ctx, p.cfg.RetryFor/2)
		release, err = p.locks.acquire(wctx, caller, true)
		cancel()
	}
	if err != nil {
		return nil, &events.CodedError{Code: events.CodeBusy,
			Message: fmt.Sprintf("node %s is changing its records of %s itself; nothing was applied, retry", p.cfg.Self, caller)}
	}
	return release, nil
}

// peerCallError classifies a failed call: busy (the peer applied nothing)
// or a *PeerError.
func peerCallError(peer string, err error, maybeApplied bool) error {
	if events.HasCode(err, events.CodeBusy) {
		return &errPeerBusy{peer: peer}
	}
	return &PeerError{Peer: peer, Err: err, MaybeApplied: maybeApplied}
}

func (p *Protocol) heldTables(subs []storage.Subscription) ([]storage.TableKey, error) {
	keys := make([]storage.TableKey, len(subs))
	for i, s := range subs {
		keys[i] = s.Key()
	}
	held, err := p.cfg.Store.HeldTables(keys)
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

func keySet(keys []storage.TableKey) map[storage.TableKey]bool {
	m := make(map[storage.TableKey]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
