package storage

import "strings"

// Change says which parts of the desired state a commit changed, so that the
// workers acting on them are woken by the store itself rather than by every
// writer remembering to announce what it wrote.
type Change uint8

const (
	// RoutesChanged: the hub or leaf routes.
	RoutesChanged Change = 1 << iota
	// NodesChanged: node records, their subscriptions, tables or import
	// floors — everything the replication worker plans from.
	NodesChanged
)

// changeOf classifies the keys one commit wrote. Bookkeeping the workers
// write themselves (applied epochs, notices, meta) changes nothing they plan
// from, so it wakes nobody (and a worker never wakes itself).
func changeOf(dirty map[string]bool) Change {
	var c Change
	for k := range dirty {
		switch {
		case k == keyRoutes:
			c |= RoutesChanged
		case strings.HasPrefix(k, prefixNode), strings.HasPrefix(k, prefixSub),
			strings.HasPrefix(k, prefixTable), strings.HasPrefix(k, prefixFloor):
			c |= NodesChanged
		}
	}
	return c
}

// OnChange registers fn, called after each commit that changed routes or
// nodes, once that commit is durable (synced), so a worker it wakes acts on
// what a crash keeps. fn must not block. Register it before the store is
// written to; later registrations replace earlier ones.
func (s *Store) OnChange(fn func(Change)) { s.onChange.Store(&fn) }

func (s *Store) announce(c Change) {
	if c == 0 {
		return
	}
	if fn := s.onChange.Load(); fn != nil {
		(*fn)(c)
	}
}
