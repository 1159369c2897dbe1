package membership

import (
	"errors"
	"fmt"
	"sort"
)

// Errors the operations return; handlers phrase them in HarperDB's words.
var (
	// ErrExists: add_node for a node already recorded.
	ErrExists = errors.New("node already added")
	// ErrNotFound: remove_node for a node not recorded.
	ErrNotFound = errors.New("node not found")
	// ErrStopping: the node is shutting down; nothing was changed.
	ErrStopping = errors.New("node is shutting down")
)

// PeerError is a failed call to the peer. Err is events.ErrNotListening,
// events.ErrNoResponse, an *events.RemoteError (the peer refused) or another
// transport error. MaybeApplied says the peer may hold the change despite
// the error (it did not answer in time, or a later call of several failed):
// this node keeps a notice that brings the peer back in line with its own
// record, which was put back as it was.
type PeerError struct {
	Peer         string
	Err          error
	MaybeApplied bool
}

func (e *PeerError) Error() string { return fmt.Sprintf("node %s: %v", e.Peer, e.Err) }
func (e *PeerError) Unwrap() error { return e.Err }

// BusyError: the peer kept changing the records of this pair from its side
// for as long as the operation could retry. Nothing was changed on either
// node; the operation can be retried.
type BusyError struct {
	Peer  string
	Tries int
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("node %s kept changing the same records from its side (%d tries)", e.Peer, e.Tries)
}

// ConfigureError: configure_cluster could make no connection of the new
// setup, so the old one stays whole.
type ConfigureError struct {
	Failed []string         // node names, sorted
	Causes map[string]error // why each failed
}

func (e *ConfigureError) Error() string {
	return fmt.Sprintf("no connection could be configured (failed: %v)", e.Failed)
}

func sortedNames(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// errPeerBusy is an attempt's outcome when the peer answered busy: the
// attempt put its change back and the operation retries (retryBusy).
type errPeerBusy struct{ peer string }

func (e *errPeerBusy) Error() string { return "node " + e.peer + " is busy with the same records" }
