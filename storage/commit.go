package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Group commit. Badger with SyncWrites makes every write request durable
// with its own sync of the memtable's write-ahead log: concurrent
// transactions share the value-log sync, not the WAL sync (strace: 1280
// commits of 64 concurrent writers, 1339 msyncs). So the store batches
// itself: one committer goroutine applies every update function waiting at
// that moment, in arrival order, to ONE Badger transaction and commits it;
// a syncer goroutine makes everything committed so far durable with one
// DB.Sync (WAL and value log) while the committer goes on with the next
// batch, and answers the callers after that sync (updateThenSync callers
// are told once after the commit and again after the sync). So commits
// never wait behind a sync, and one sync covers every batch committed
// while the previous one ran. Updates that wrote nothing (ErrNoChange) are
// answered after the sync too: what they read may be a commit not yet on
// disk. The more writers wait, the more share a commit and a sync.
//
// Isolation: an update function that fails without writing (the usual case:
// validation, ErrNoChange) simply drops out of the batch. One that fails
// after writing has left partial writes in the shared transaction: the batch
// is discarded and re-run without it (update functions may run more than
// once), and it runs again later on its own, where its error is its own.

// reader is what update functions and views read through.
type reader interface {
	Get(key []byte) (*badger.Item, error)
	NewIterator(opt badger.IteratorOptions) *badger.Iterator
}

// wtxn is the write transaction update functions see: Badger's, with their
// writes counted, and the keys the transaction (shared by a batch) has
// written so far.
type wtxn struct {
	*badger.Txn
	writes int
	*round
	store *Store
}

// round is what the update functions sharing one transaction have written:
// every key, and node records decoded (nil: deleted), so reads of them need
// no decoding and the store learns them once committed.
type round struct {
	dirty map[string]bool
	nodes map[string]*nodeEntry
}

func newRound() *round { return &round{dirty: map[string]bool{}, nodes: map[string]*nodeEntry{}} }

func (w *wtxn) Set(k, v []byte) error {
	w.writes++
	w.dirty[string(k)] = true
	return w.Txn.Set(k, v)
}

func (w *wtxn) Delete(k []byte) error {
	w.writes++
	w.dirty[string(k)] = true
	return w.Txn.Delete(k)
}

// write is one update waiting for the committer.
type write struct {
	fn      func(*wtxn) error
	done    chan error // buffered: the committer never waits for the caller
	applied chan error // when set (buffered): told after the commit, before the sync
	told    bool       // applied has been told (committer only)
	later   bool       // may wait for the next batch (or riderDelay)
	async   bool       // the writer does not wait: it reads done when it wants
}

// maxBatch bounds how many updates share one transaction.
const maxBatch = 256

// riderDelay bounds how long a deferred update (UpdateLater) waits for a
// batch to ride along with before it is committed on its own.
var riderDelay = 50 * time.Millisecond

// ErrClosed is returned by updates after Close.
var ErrClosed = errors.New("state store is closed")

type committer struct {
	queue   chan *write
	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	stopped chan struct{} // closed once the syncer has answered everything

	syncq     chan synced  // committed updates waiting for a sync
	committed atomic.Int64 // Badger commits so far
	synced    int64        // commits covered by the last sync (syncer only)
}

// synced is one commit round's updates and what the round changed, waiting
// for a sync to answer and announce them.
type synced struct {
	ws     []*write
	change Change
}

func (s *Store) startCommitter() {
	s.c = &committer{queue: make(chan *write, 1024), stopped: make(chan struct{}), syncq: make(chan synced, 1024)}
	go s.commitLoop()
	go s.syncLoop()
}

// syncLoop answers committed updates once a sync covers their commits,
// syncing everything committed so far whenever one is not covered yet.
func (s *Store) syncLoop() {
	defer close(s.c.stopped)
	for first := range s.c.syncq {
		ws, change := first.ws, first.change
	more:
		for {
			select {
			case next, ok := <-s.c.syncq:
				if !ok {
					break more
				}
				ws, change = append(ws, next.ws...), change|next.change
			default:
				break more
			}
		}
		var err error
		if upTo := s.c.committed.Load(); upTo > s.c.synced {
			if err = s.db.Sync(); err == nil {
				s.syncs.Add(1)
				s.c.synced = upTo
			} else {
				err = fmt.Errorf("sync state store: %w", err)
			}
		}
		if err == nil {
			s.announce(change)
		}
		for _, w := range ws {
			finish(w, err)
		}
	}
}

// submit hands w to the committer and waits for its outcome (later writes
// are not waited for).
func (s *Store) submit(w *write) error {
	s.c.mu.RLock()
	if s.c.closed {
		s.c.mu.RUnlock()
		return ErrClosed
	}
	s.c.queue <- w
	s.c.mu.RUnlock()
	switch {
	case w.later, w.async:
		return nil
	case w.applied != nil:
		return <-w.applied
	}
	return <-w.done
}

// stopCommitter commits what is queued (deferred updates included) and
// stops the committer.
func (s *Store) stopCommitter() {
	s.c.mu.Lock()
	if s.c.closed {
		s.c.mu.Unlock()
		return
	}
	s.c.closed = true
	close(s.c.queue)
	s.c.mu.Unlock()
	<-s.c.stopped
}

func (s *Store) commitLoop() {
	defer close(s.c.syncq)
	var (
		riders []*write // deferred updates waiting for company
		timer  *time.Timer
		expiry <-chan time.Time
	)
	for {
		var now []*write
		closed, expired := false, false
		take := func(w *write, ok bool) {
			switch {
			case !ok:
				closed = true
			case w.later:
				riders = append(riders, w)
			default:
				now = append(now, w)
			}
		}
		select {
		case w, ok := <-s.c.queue:
			take(w, ok)
		case <-expiry:
			expired = true
		}
		// Take whatever else is waiting, without waiting for more.
	drain:
		for !closed && len(now)+len(riders) < maxBatch {
			select {
			case w, ok := <-s.c.queue:
				take(w, ok)
			default:
				break drain
			}
		}
		if len(now) == 0 && !closed && !expired {
			// Only deferred updates so far: give them a little time to
			// ride along with a batch that must be committed anyway.
			if timer == nil {
				timer = time.NewTimer(riderDelay)
				expiry = timer.C
			}
			continue
		}
		if timer != nil {
			timer.Stop()
			timer, expiry = nil, nil
		}
		if batch := append(now, riders...); len(batch) > 0 {
			s.runBatch(batch)
		}
		riders = nil
		if closed {
			return
		}
	}
}

// runBatch commits ws in as few transactions as isolation allows and
// answers each.
func (s *Store) runBatch(ws []*write) {
	var deferred []*write // failed after writing: each on its own
	for len(ws) > 0 {
		ws, deferred = s.commitRound(ws, deferred)
	}
	for len(deferred) > 0 {
		w := deferred[0]
		deferred = deferred[1:]
		rest, more := s.commitRound([]*write{w}, nil)
		for len(rest) > 0 { // conflicts: retried
			rest, more = s.commitRound(rest, more)
		}
		deferred = append(deferred, more...)
	}
}

func finish(w *write, err error) {
	if errors.Is(err, ErrNoChange) {
		err = nil
	}
	tellApplied(w, err)
	w.done <- err
}

// tellApplied tells an updateThenSync writer its commit's outcome (once).
func tellApplied(w *write, err error) {
	if w.applied != nil && !w.told {
		w.applied <- err
		w.told = true
	}
}

// commitRound applies ws to one transaction and commits it. It returns the
// writes to run again (in a new transaction) and the deferred list with the
// writes that failed after writing added.
func (s *Store) commitRound(ws []*write, deferred []*write) (again, stillDeferred []*write) {
	if err := s.checkSpace(); err != nil {
		for _, w := range ws {
			finish(w, err)
		}
		return nil, deferred
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	rd := newRound()
	type outcome struct {
		w      *write
		err    error
		writes int
	}
	var ran []outcome
	for i, w := range ws {
		wt := &wtxn{Txn: txn, round: rd, store: s}
		err := w.fn(wt)
		if err != nil && wt.writes > 0 {
			if len(ws) == 1 {
				finish(w, err) // alone: the failure is its own
				return nil, deferred
			}
			// Partial writes in the shared transaction: start over
			// without it; it runs again on its own afterwards.
			rest := make([]*write, 0, len(ws)-1)
			rest = append(append(rest, ws[:i]...), ws[i+1:]...)
			return rest, append(deferred, w)
		}
		ran = append(ran, outcome{w, err, wt.writes})
	}
	total := 0
	for _, o := range ran {
		if o.err == nil {
			total += o.writes
		}
	}
	var (
		cerr   error
		change Change
	)
	if total > 0 {
		cerr = txn.Commit()
		if errors.Is(cerr, badger.ErrConflict) {
			return ws, deferred // nothing was written: run them again
		}
		if cerr == nil {
			s.c.committed.Add(1)
			s.learnNodes(rd.nodes)
			if rd.dirty[keyRoutes] {
				s.routes.invalidate()
			}
			change = changeOf(rd.dirty)
		}
	}
	var toSync []*write
	for _, o := range ran {
		switch {
		case o.err != nil && !errors.Is(o.err, ErrNoChange):
			finish(o.w, o.err)
		case cerr != nil:
			finish(o.w, cerr)
		default:
			if o.err == nil && o.writes > 0 {
				s.commits.Add(1)
			}
			tellApplied(o.w, nil)
			toSync = append(toSync, o.w)
		}
	}
	if len(toSync) > 0 {
		s.c.syncq <- synced{toSync, change}
	}
	return nil, deferred
}
