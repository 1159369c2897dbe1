package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"
)

// ErrDiskFull is returned instead of writing when the store's filesystem is
// nearly full: Badger dies with SIGBUS when it cannot extend a file, so we
// refuse the write while we still can. It is temporary: writes succeed again
// once space is freed.
var ErrDiskFull error = diskFullError{}

type diskFullError struct{}

func (diskFullError) Error() string {
	return fmt.Sprintf("not enough free disk space under the state store (writes need %d MiB free); free some space and retry", MinFreeBytes>>20)
}

// Unavailable marks the error as a temporary condition of this node.
func (diskFullError) Unavailable() bool { return true }

// MinFreeBytes is the free space below which writes are refused.
var MinFreeBytes uint64 = 64 << 20

const (
	keyRoutes     = "routes"
	prefixNode    = "node/"
	prefixTable   = "table/"
	prefixMeta    = "meta/"
	maxTxnRetries = 20
)

// Store is the desired-state store. Safe for concurrent use.
type Store struct {
	db      *badger.DB
	dir     string
	commits atomic.Int64
	syncs   atomic.Int64
	c       *committer
	nodes   nodeSet
	routes  routesCache

	onChange atomic.Pointer[func(Change)] // see OnChange
}

// BadgerOptions are the options the store opens Badger with; the benchmark's
// synced-write floor uses them too, so floor and store write the same way.
// Badger does not sync on commit: the committer syncs each batch itself
// (DB.Sync: the memtable's WAL and the value log) so that it can tell an
// update's writer when it is applied — visible, and surviving a crash of
// the process — before it is durable against power loss (UpdateThenSync).
func BadgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(nil).
		WithNumVersionsToKeep(1).
		// Desired state is small: keep memory modest so an idle node stays lean.
		WithMemTableSize(8 << 20).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4)
}

// Open opens (creating if needed) the store in dir with synced writes.
//
// Damaged files are refused before Badger sees them (CheckFiles, a
// *DamageError), and an error or panic inside Badger's open is returned as
// an error naming the store.
func Open(dir string) (*Store, error) {
	if err := CheckFiles(dir); err != nil {
		return nil, err
	}
	db, err := openBadger(dir)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir}
	if err := s.loadNodes(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	s.startCommitter()
	return s, nil
}

// openBadger opens Badger, turning a panic on its open path into an error.
func openBadger(dir string) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger panicked while opening (%v)", r)
		}
	}()
	return badger.Open(BadgerOptions(dir))
}

// Close commits the updates still queued (deferred ones included), then
// flushes and closes Badger. Updates after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.stopCommitter()
	return s.db.Close()
}

// Commits counts update functions that wrote something and were committed
// since Open (several may share one Badger transaction: see Syncs). Tests and
// benchmarks use it to prove rejected requests never reach the disk.
func (s *Store) Commits() int64 { return s.commits.Load() }

// Syncs counts the Badger transactions the store has committed and synced
// since Open (each one DB.Sync: the memtable's write-ahead log and the value
// log), so this is the number of synced writes the store cost the disk;
// group commit (commit.go) makes it smaller than Commits under concurrency.
func (s *Store) Syncs() int64 { return s.syncs.Load() }

func (s *Store) checkSpace() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return nil // cannot tell; let Badger try
	}
	if st.Bavail*uint64(st.Bsize) < MinFreeBytes {
		return ErrDiskFull
	}
	return nil
}

// update runs fn in a read-write transaction and commits it synced, possibly
// together with concurrent updates (group commit), and returns once it is
// durable. fn may run more than once (when a batch it shared is re-run), so
// it must only depend on what it reads. Returning ErrNoChange writes
// nothing.
func (s *Store) update(fn func(txn *wtxn) error) error {
	return s.submit(&write{fn: fn, done: make(chan error, 1)})
}

// updateThenSync is update that returns as soon as fn's writes are
// committed — visible to readers, and kept if the process crashes — and
// reports on synced once they are also on disk (fsync), or why not.
func (s *Store) updateThenSync(fn func(txn *wtxn) error) (synced <-chan error, err error) {
	w := &write{fn: fn, done: make(chan error, 1), applied: make(chan error, 1)}
	if err := s.submit(w); err != nil {
		return nil, err
	}
	return w.done, nil
}

// updateAsync queues fn for the next batch and returns at once; durable
// reports when fn's writes are on disk, or why they are not (fn's own
// error included).
func (s *Store) updateAsync(fn func(txn *wtxn) error) (durable <-chan error, err error) {
	w := &write{fn: fn, done: make(chan error, 1), async: true}
	if err := s.submit(w); err != nil {
		return nil, err
	}
	return w.done, nil
}

// updateLater queues fn to be committed with the next batch of updates, or
// on its own within riderDelay, and returns at once. For writes whose
// durability may wait: losing them in a crash must be harmless.
func (s *Store) updateLater(fn func(txn *wtxn) error) {
	_ = s.submit(&write{fn: fn, done: make(chan error, 1), later: true})
}

func getJSON(txn reader, key string, v any) (bool, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func setJSON(txn *wtxn, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set([]byte(key), b)
}

func scanJSON[T any](txn reader, prefix string) ([]T, error) {
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte(prefix)})
	defer it.Close()
	var out []T
	for it.Rewind(); it.Valid(); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Item().Key(), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// routesCache keeps the decoded routes between changes: cluster_get_routes
// reads them on every request, and a Badger read and JSON decode were a
// third of that operation's own cost. The committer drops the entry right
// after a commit that wrote the routes; gen keeps a read that began before
// that commit from filing what it read.
type routesCache struct {
	mu  sync.Mutex
	gen uint64
	r   *Routes
}

func (c *routesCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.r = nil
	c.mu.Unlock()
}

// Routes returns the desired routes.
func (s *Store) Routes() (Routes, error) {
	s.routes.mu.Lock()
	if c := s.routes.r; c != nil {
		s.routes.mu.Unlock()
		return c.clone(), nil
	}
	gen := s.routes.gen
	s.routes.mu.Unlock()
	var r Routes
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := getJSON(txn, keyRoutes, &r)
		return err
	})
	if err != nil {
		return Routes{}, err
	}
	s.routes.mu.Lock()
	if s.routes.gen == gen {
		c := r.clone()
		s.routes.r = &c
	}
	s.routes.mu.Unlock()
	return r, nil
}

// UpdateRoutes applies fn to the desired routes and persists the result
// (nothing is written when fn returns ErrNoChange). fn may run more than once
// (on write conflicts), so it must only depend on its argument.
func (s *Store) UpdateRoutes(fn func(*Routes) error) (Routes, error) {
	var out Routes
	err := s.update(func(txn *wtxn) error {
		var r Routes
		if _, err := getJSON(txn, keyRoutes, &r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		out = r
		return setJSON(txn, keyRoutes, r)
	})
	return out, err
}

// Node returns the registered node name, and whether it exists.
func (s *Store) Node(name string) (Node, bool, error) {
	if e := s.nodes.get(name); e != nil {
		return e.node.clone(), true, nil
	}
	return Node{}, false, nil
}

// Nodes returns every registered node, sorted by name.
func (s *Store) Nodes() ([]Node, error) {
	var out []Node
	for _, e := range s.nodes.sorted(nil) {
		out = append(out, e.node.clone())
	}
	return out, nil
}

// UpdateNode applies fn to the named node's record (zero Node with the name set
// when absent; exists says which) and stores the result, or deletes the record
// when fn returns keep=false. fn may run more than once.
func (s *Store) UpdateNode(name string, fn func(n *Node, exists bool) (keep bool, err error)) error {
	return s.update(func(txn *wtxn) error {
		n, exists := txn.getNode(name)
		if !exists {
			n = Node{Name: name}
		}
		keep, err := fn(&n, exists)
		if err != nil {
			return err
		}
		if !keep {
			if !exists {
				return nil
			}
			return txn.deleteNode(name)
		}
		return txn.putNode(n)
	})
}

// ReplaceNodes swaps the whole set of registered nodes in one transaction, so
// a crash leaves either the old set or the new one.
func (s *Store) ReplaceNodes(nodes []Node) error {
	return s.update(func(txn *wtxn) error {
		for _, e := range s.nodes.sorted(txn.nodes) {
			if err := txn.deleteNode(e.node.Name); err != nil {
				return err
			}
		}
		for _, n := range nodes {
			if err := txn.putNode(n); err != nil {
				return err
			}
		}
		return nil
	})
}

func tableKey(k TableKey) string { return prefixTable + k.Database + "\x00" + k.Table }

// Tables returns the tables this node holds, sorted.
func (s *Store) Tables() ([]Table, error) {
	var out []Table
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = scanJSON[Table](txn, prefixTable)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, err
}

// HasTable says whether this node holds the table.
func (s *Store) HasTable(k TableKey) (bool, error) {
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(tableKey(k)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		ok = err == nil
		return err
	})
	return ok, err
}

// HeldTables returns which of keys this node holds, in one read.
func (s *Store) HeldTables(keys []TableKey) (map[TableKey]bool, error) {
	out := make(map[TableKey]bool, len(keys))
	err := s.db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			_, err := txn.Get([]byte(tableKey(k)))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[k] = true
		}
		return nil
	})
	return out, err
}

// HasDatabase says whether this node holds any table of the database.
func (s *Store) HasDatabase(db string) (bool, error) {
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixTable + db + "\x00")})
		defer it.Close()
		it.Rewind()
		ok = it.Valid()
		return nil
	})
	return ok, err
}

// PutTables records tables as held here; existing ones keep their creation time.
// It reports which of them were new.
func (s *Store) PutTables(tables []Table) (created []TableKey, err error) {
	err = s.update(func(txn *wtxn) error {
		created = created[:0]
		for _, t := range tables {
			_, err := txn.Get([]byte(tableKey(t.TableKey)))
			if err == nil {
				continue
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			if err := setJSON(txn, tableKey(t.TableKey), t); err != nil {
				return err
			}
			created = append(created, t.TableKey)
		}
		if len(created) == 0 {
			return ErrNoChange
		}
		return nil
	})
	return created, err
}

// ErrNoChange, returned by an update function, ends the update without
// writing anything; the update method then returns nil.
var ErrNoChange = errors.New("no change")

// Meta returns a bookkeeping value, or "" when unset.
func (s *Store) Meta(key string) (string, error) {
	var v string
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixMeta + key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := item.ValueCopy(nil)
		v = string(b)
		return err
	})
	return v, err
}

// SetMeta stores a bookkeeping value.
func (s *Store) SetMeta(key, value string) error {
	if strings.ContainsRune(key, '/') {
		return fmt.Errorf("meta key %q must not contain '/'", key)
	}
	return s.update(func(txn *wtxn) error { return txn.Set([]byte(prefixMeta+key), []byte(value)) })
}

// SeedRoutes stores routes only if the store has never been seeded, and marks
// it seeded, so config-file routes count on first start only.
func (s *Store) SeedRoutes(r Routes) (seeded bool, err error) {
	err = s.update(func(txn *wtxn) error {
		seeded = false
		if _, err := txn.Get([]byte(prefixMeta + "seeded")); err == nil {
			return ErrNoChange
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if err := txn.Set([]byte(prefixMeta+"seeded"), []byte("1")); err != nil {
			return err
		}
		seeded = true
		return setJSON(txn, keyRoutes, r)
	})
	return seeded, err
}
