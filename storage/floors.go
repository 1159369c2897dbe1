package storage

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// An import floor is the last of a peer's stream sequences for a table that
// this node had received when it purged that table's transactions. A source
// resumes after the last message it imported: clusterd rebuilds a source
// group from the stream's messages when a table joins or leaves it, and
// JetStream rebuilds its own index of source positions from them when that
// index is outdated (after a crash). A purge may have removed those
// messages, so the replication worker starts sources after the floors
// instead, and purged transactions are never imported again. Floors only
// rise, and are cleared when a subscription is re-sourced from a new start
// time.
const prefixFloor = "floor/"

// floor is a stored floor; the value names its peer and table, so the key
// never has to be parsed.
type floor struct {
	Peer string   `json:"peer"`
	Key  TableKey `json:"table"`
	Seq  uint64   `json:"seq"`
}

func floorKey(peer string, k TableKey) string {
	return prefixFloor + peer + "\x00" + k.Database + "\x00" + k.Table
}

// RaiseImportFloor records that peer's transactions on table k up to seq were
// received here; a lower value than the one stored is ignored.
func (s *Store) RaiseImportFloor(peer string, k TableKey, seq uint64) error {
	if seq == 0 {
		return nil
	}
	return s.update(func(txn *wtxn) error {
		var cur floor
		if _, err := getJSON(txn, floorKey(peer, k), &cur); err != nil {
			return err
		}
		if cur.Seq >= seq {
			return ErrNoChange
		}
		return setJSON(txn, floorKey(peer, k), floor{Peer: peer, Key: k, Seq: seq})
	})
}

// ClearImportFloor forgets peer's floor for table k.
func (s *Store) ClearImportFloor(peer string, k TableKey) error {
	return s.update(func(txn *wtxn) error {
		if _, err := txn.Get([]byte(floorKey(peer, k))); errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNoChange
		}
		return txn.Delete([]byte(floorKey(peer, k)))
	})
}

// ImportFloors returns every floor, by peer and table.
func (s *Store) ImportFloors() (map[string]map[TableKey]uint64, error) {
	out := map[string]map[TableKey]uint64{}
	err := s.db.View(func(txn *badger.Txn) error {
		all, err := scanJSON[floor](txn, prefixFloor)
		for _, f := range all {
			if out[f.Peer] == nil {
				out[f.Peer] = map[TableKey]uint64{}
			}
			out[f.Peer][f.Key] = f.Seq
		}
		return err
	})
	return out, err
}
