package membership

import (
	"context"
	"errors"
	"sync"
)

// errLocked: a lock asked for without waiting is held.
var errLocked = errors.New("locked")

// locks serializes, on this node, the changes of each pair it is part of:
// one holder per peer at a time, or configure_cluster alone for every peer.
// A peer's entry exists only while it is held, so names a caller sends
// (remove_node of unknown nodes) leave nothing behind. Waiters watch one
// channel that every release closes: contention is per pair and brief, and
// this keeps waits cancellable by a context, which sync.Mutex is not.
type locks struct {
	mu          sync.Mutex
	held        map[string]struct{}
	exclusive   bool
	exclWaiting int           // configure_cluster waiting: new holders wait behind it
	changed     chan struct{} // closed and replaced on every release
}

func (l *locks) initLocked() {
	if l.held == nil {
		l.held = map[string]struct{}{}
		l.changed = make(chan struct{})
	}
}

// acquire takes peer's lock. With wait false a held lock fails at once with
// errLocked; otherwise it waits until ctx ends.
func (l *locks) acquire(ctx context.Context, peer string, wait bool) (release func(), err error) {
	for {
		l.mu.Lock()
		l.initLocked()
		_, busy := l.held[peer]
		if !busy && !l.exclusive && l.exclWaiting == 0 {
			l.held[peer] = struct{}{}
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { l.release(peer) }) }, nil
		}
		ch := l.changed
		l.mu.Unlock()
		if !wait {
			return nil, errLocked
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// acquireAll takes every peer's lock at once (configure_cluster): it waits
// for the current holders, and new ones wait behind it.
func (l *locks) acquireAll(ctx context.Context) (release func(), err error) {
	l.mu.Lock()
	l.initLocked()
	l.exclWaiting++
	for l.exclusive || len(l.held) > 0 {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			l.exclWaiting--
			l.broadcastLocked()
			l.mu.Unlock()
			return nil, ctx.Err()
		}
		l.mu.Lock()
	}
	l.exclWaiting--
	l.exclusive = true
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.exclusive = false
			l.broadcastLocked()
			l.mu.Unlock()
		})
	}, nil
}

func (l *locks) release(peer string) {
	l.mu.Lock()
	delete(l.held, peer)
	l.broadcastLocked()
	l.mu.Unlock()
}

func (l *locks) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// size is the number of peers' entries (held locks).
func (l *locks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}
