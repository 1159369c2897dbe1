package events

import (
	"sync"

	"github.com/clusterd/clusterd/storage"
)

// Kind names a class of desired-state change.
type Kind string

const (
	RoutesChanged Kind = "routes.changed"
	NodesChanged  Kind = "nodes.changed"
)

// Bus fans change announcements out to workers. Announcements coalesce: a
// worker that is busy sees one pending wake-up however many changes came, which
// is all a level-triggered worker needs (it re-reads the whole desired state).
type Bus struct {
	mu   sync.Mutex
	subs map[Kind][]chan struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[Kind][]chan struct{}{}} }

// Subscribe returns a channel that receives a value after each change of kind.
func (b *Bus) Subscribe(kinds ...Kind) <-chan struct{} {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range kinds {
		b.subs[k] = append(b.subs[k], ch)
	}
	return ch
}

// Publish announces a change; it never blocks.
func (b *Bus) Publish(k Kind) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs[k] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Announce publishes what a commit of the state store changed; it is the
// store's OnChange callback, so that writers never announce by hand.
func (b *Bus) Announce(c storage.Change) {
	if c&storage.RoutesChanged != 0 {
		b.Publish(RoutesChanged)
	}
	if c&storage.NodesChanged != 0 {
		b.Publish(NodesChanged)
	}
}
