package storage

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// hold occupies the committer with an update that waits for release, so
// the updates submitted meanwhile queue up into one batch.
func hold(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.update(func(txn *wtxn) error {
			select {
			case <-started:
			default:
				close(started)
			}
			<-gate
			return txn.Set([]byte("meta/hold"), []byte("1"))
		})
	}()
	<-started
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding update: %v", err)
		}
	}
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.c.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d updates queued, want %d", len(s.c.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentUpdatesShareOneSync(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	release := hold(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = s.SetMeta("k"+strconv.Itoa(i), "v") }(i)
	}
	waitQueued(t, s, 10)
	syncs, commits := s.Syncs(), s.c.committed.Load()
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	// The holding update's transaction, then one for the ten; one sync
	// each, or one for both when the second commit lands before the first
	// sync starts.
	if got := s.c.committed.Load() - commits; got != 2 {
		t.Fatalf("%d Badger commits for 1 + 10 queued updates, want 2", got)
	}
	if got := s.Syncs() - syncs; got < 1 || got > 2 {
		t.Fatalf("%d syncs for 1 + 10 queued updates, want 1 or 2", got)
	}
	if s.Commits() != 11 {
		t.Fatalf("commits %d, want 11", s.Commits())
	}
	for i := range errs {
		if v, _ := s.Meta("k" + strconv.Itoa(i)); v != "v" {
			t.Fatalf("k%d = %q after commit", i, v)
		}
	}
}

func TestBatchedUpdatesSeeEachOtherInOrder(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	release := hold(t, s)
	incr := func(txn *wtxn) error {
		var n int
		if _, err := getJSON(txn, "meta/n", &n); err != nil {
			return err
		}
		return setJSON(txn, "meta/n", n+1)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.update(incr) }()
	}
	waitQueued(t, s, 20)
	release()
	wg.Wait()
	if v, _ := s.Meta("n"); v != "20" {
		t.Fatalf("n = %s after 20 increments, want 20", v)
	}
}

func TestAFailingUpdateLeavesItsBatchIntact(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	release := hold(t, s)
	boom := errors.New("boom")
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 4)
	submit := func(name string, fn func(txn *wtxn) error) {
		go func() { results <- result{name, s.update(fn)} }()
	}
	submit("ok1", func(txn *wtxn) error { return txn.Set([]byte("meta/ok1"), []byte("1")) })
	waitQueued(t, s, 1)
	// Fails after writing: its partial write must not survive.
	submit("partial", func(txn *wtxn) error {
		if err := txn.Set([]byte("meta/partial"), []byte("1")); err != nil {
			return err
		}
		return boom
	})
	waitQueued(t, s, 2)
	submit("refused", func(txn *wtxn) error { return boom })
	waitQueued(t, s, 3)
	submit("nochange", func(txn *wtxn) error { return ErrNoChange })
	waitQueued(t, s, 4)
	commits := s.c.committed.Load()
	release()
	got := map[string]error{}
	for i := 0; i < 4; i++ {
		r := <-results
		got[r.name] = r.err
	}
	if got["ok1"] != nil || got["nochange"] != nil || !errors.Is(got["partial"], boom) || !errors.Is(got["refused"], boom) {
		t.Fatalf("results: %v", got)
	}
	if v, _ := s.Meta("ok1"); v != "1" {
		t.Fatal("ok1 was not committed")
	}
	if v, _ := s.Meta("partial"); v != "" {
		t.Fatal("the failed update's partial write was committed")
	}
	// The holding update, and the batch re-run without the failed one; the
	// failed one ran again alone and wrote nothing. (Counted in Badger
	// commits: one sync may cover both.)
	if d := s.c.committed.Load() - commits; d != 2 {
		t.Fatalf("%d Badger commits, want 2", d)
	}
}

func TestDeferredDeletionRidesWithTheNextWriteOrCommitsSoon(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	n := Notice{Peer: "b", Kind: "sync", At: time.Now().UTC()}
	if err := s.Update(func(tx *Tx) error { return tx.PutNotice(n) }); err != nil {
		t.Fatal(err)
	}
	commits := s.c.committed.Load()
	release := hold(t, s)
	s.DeleteNoticeLater(n)
	waitQueued(t, s, 1)
	done := make(chan error, 1)
	go func() { done <- s.SetMeta("x", "1") }()
	waitQueued(t, s, 2)
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Notices(); len(left) != 0 {
		t.Fatalf("notice not deleted with the next write: %v", left)
	}
	if d := s.c.committed.Load() - commits; d != 2 {
		t.Fatalf("%d Badger commits, want 2 (the holding update, then the write with the deletion riding along)", d)
	}

	// Alone, it is committed within riderDelay; a deferred one still queued
	// at Close is committed by Close.
	if err := s.Update(func(tx *Tx) error { return tx.PutNotice(n) }); err != nil {
		t.Fatal(err)
	}
	s.DeleteNoticeLater(n)
	deadline := time.Now().Add(10 * time.Second)
	for left, _ := s.Notices(); len(left) > 0; left, _ = s.Notices() {
		if time.Now().After(deadline) {
			t.Fatal("a deferred deletion alone was never committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutNotice(n) }); err != nil {
		t.Fatal(err)
	}
	s.DeleteNoticeLater(n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta("y", "1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after Close: %v", err)
	}
	s = open(t, dir)
	defer s.Close()
	if left, _ := s.Notices(); len(left) != 0 {
		t.Fatalf("Close lost a deferred deletion: %v", left)
	}
}

func TestManyConcurrentWritersAllLand(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := s.SetMeta(fmt.Sprintf("w%d-%d", w, i), "v"); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if s.Commits() != 64*20 {
		t.Fatalf("commits %d", s.Commits())
	}
	if s.Syncs() > s.Commits() {
		t.Fatalf("more syncs (%d) than commits (%d)", s.Syncs(), s.Commits())
	}
	for w := 0; w < 64; w++ {
		if v, _ := s.Meta(fmt.Sprintf("w%d-19", w)); v != "v" {
			t.Fatalf("w%d-19 missing", w)
		}
	}
}

// TestUpdateThenSyncIsVisibleThenDurable: the writer learns of the commit
// first (the value is readable), then of the sync, and the value survives a
// reopen.
func TestUpdateThenSyncIsVisibleThenDurable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	syncs := s.Syncs()
	synced, err := s.UpdateThenSync(func(tx *Tx) error { return tx.txn.Set([]byte("meta/early"), []byte("v")) })
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Meta("early"); err != nil || v != "v" {
		t.Fatalf("after the commit: %q %v, want the value", v, err)
	}
	if err := <-synced; err != nil {
		t.Fatalf("sync: %v", err)
	}
	if d := s.Syncs() - syncs; d != 1 {
		t.Fatalf("%d syncs, want 1", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if v, err := s.Meta("early"); v != "v" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
}

// TestUpdateThenSyncReportsFailure: an update that fails is told at once and
// never reports a sync.
func TestUpdateThenSyncReportsFailure(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	boom := errors.New("boom")
	if _, err := s.UpdateThenSync(func(tx *Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
