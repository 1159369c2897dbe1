package storage

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

const (
	prefixNotice  = "notice/"
	prefixApplied = "applied/"
)

// Tx is a read-write transaction over several kinds of desired state, for
// changes that must land together (configure_cluster, a node record and its
// pending notice).
type Tx struct{ txn *wtxn }

// Update runs fn in one synced transaction (shared with concurrent updates:
// group commit) and returns once it is durable. fn may run more than once,
// so it must only depend on what it reads. Returning ErrNoChange writes
// nothing.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.update(func(txn *wtxn) error { return fn(&Tx{txn: txn}) })
}

// UpdateAsync queues fn to be committed with the next batch and returns at
// once, in submission order with every other update; durable reports when
// the writes are synced, or why they were not made (fn's error included).
// For a writer whose reply may precede its write because someone else keeps
// a record until durable says so (a peer answering node_set).
func (s *Store) UpdateAsync(fn func(tx *Tx) error) (durable <-chan error, err error) {
	return s.updateAsync(func(txn *wtxn) error { return fn(&Tx{txn: txn}) })
}

// UpdateThenSync is Update for a writer that may answer before the disk
// sync: it returns once fn's writes are committed — visible, and kept if the
// process crashes — and synced then reports whether they reached the disk
// (lost only if the machine loses power or the sync fails meanwhile).
func (s *Store) UpdateThenSync(fn func(tx *Tx) error) (synced <-chan error, err error) {
	return s.updateThenSync(func(txn *wtxn) error { return fn(&Tx{txn: txn}) })
}

// Node reads a node record (a zero record with the name when absent).
func (t *Tx) Node(name string) (Node, bool, error) {
	n, ok := t.txn.getNode(name)
	if !ok {
		n = Node{Name: name}
	}
	return n, ok, nil
}

// Nodes reads every node record.
func (t *Tx) Nodes() ([]Node, error) {
	var out []Node
	for _, e := range t.txn.store.nodes.sorted(t.txn.nodes) {
		out = append(out, e.node.clone())
	}
	return out, nil
}

// PutNode writes a node record.
func (t *Tx) PutNode(n Node) error { return t.txn.putNode(n) }

// DeleteNode deletes a node record.
func (t *Tx) DeleteNode(name string) error { return t.txn.deleteNode(name) }

// PutNotice records a notice owed to a peer (replacing an older one).
func (t *Tx) PutNotice(n Notice) error { return setJSON(t.txn, prefixNotice+n.Peer, n) }

// DeleteNotice drops the notice owed to peer, if any.
func (t *Tx) DeleteNotice(peer string) error { return t.txn.Delete([]byte(prefixNotice + peer)) }

// PutTable records a table as held here, if it is not yet.
func (t *Tx) PutTable(tb Table) (created bool, err error) {
	_, err = t.txn.Get([]byte(tableKey(tb.TableKey)))
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return false, err
	}
	return true, setJSON(t.txn, tableKey(tb.TableKey), tb)
}

// Notices returns the notices still owed to peers.
func (s *Store) Notices() ([]Notice, error) {
	var out []Notice
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = scanJSON[Notice](txn, prefixNotice)
		return err
	})
	return out, err
}

// DeleteNoticeIf drops the notice owed to peer if it is still the one given
// (a newer add_node may have cancelled or replaced it meanwhile).
func (s *Store) DeleteNoticeIf(n Notice) error { return s.update(deleteNoticeIf(n)) }

// DeleteNoticeLater is DeleteNoticeIf without waiting: the deletion rides
// with the next synced write (or is committed within a few tens of
// milliseconds). For a notice whose operation succeeded: should the deletion
// be lost in a crash, the notice is delivered once more, which is harmless.
func (s *Store) DeleteNoticeLater(n Notice) { s.updateLater(deleteNoticeIf(n)) }

func deleteNoticeIf(n Notice) func(txn *wtxn) error {
	return func(txn *wtxn) error {
		var cur Notice
		ok, err := getJSON(txn, prefixNotice+n.Peer, &cur)
		if err != nil {
			return err
		}
		if !ok || cur != n {
			return ErrNoChange
		}
		return txn.Delete([]byte(prefixNotice + n.Peer))
	}
}

func appliedKey(peer string, k TableKey) string {
	return fmt.Sprintf("%s%s/%s\x00%s", prefixApplied, peer, k.Database, k.Table)
}

// AppliedEpoch is the re-source epoch the replication worker last carried
// out for peer's table.
func (s *Store) AppliedEpoch(peer string, k TableKey) (int64, error) {
	var e int64
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := getJSON(txn, appliedKey(peer, k), &e)
		return err
	})
	return e, err
}

// SetAppliedEpoch records that peer's table was re-sourced for epoch.
func (s *Store) SetAppliedEpoch(peer string, k TableKey, epoch int64) error {
	return s.update(func(txn *wtxn) error { return setJSON(txn, appliedKey(peer, k), epoch) })
}
