package membership

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

func newLocalProtocol(t testing.TB, self string) *Protocol {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := New(Config{Self: self, Enabled: true, Store: st, RetryFor: 200 * time.Millisecond})
	t.Cleanup(p.Stop)
	return p
}

// TestRemoveOfUnknownNodesLeavesNothingBehind: names a caller sends do not
// grow the lock map (#16: 200k remove_node calls with unknown names used
// to keep 120 MB).
func TestRemoveOfUnknownNodesLeavesNothingBehind(t *testing.T) {
	p := newLocalProtocol(t, "n1")
	for i := range 10000 {
		if _, err := p.Remove(context.Background(), fmt.Sprintf("ghost-%d", i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove ghost-%d: %v, want ErrNotFound", i, err)
		}
	}
	if n := p.locks.size(); n != 0 {
		t.Fatalf("%d lock entries left after removing unknown nodes", n)
	}
}

// TestCalleeWaitsOnlyWhenItSortsAfterTheCaller is the rule that keeps
// both ends of a pair from waiting on each other.
func TestCalleeWaitsOnlyWhenItSortsAfterTheCaller(t *testing.T) {
	for _, c := range []struct {
		self, caller string
		waits        bool
	}{{"a", "b", false}, {"b", "a", true}} {
		p := newLocalProtocol(t, c.self)
		release, err := p.locks.acquire(context.Background(), c.caller, false)
		if err != nil {
			t.Fatal(err)
		}
		// The lock is let go 50 ms in: a waiting callee then gets it.
		time.AfterFunc(50*time.Millisecond, release)
		start := time.Now()
		r, err := p.calleeLock(context.Background(), c.caller)
		took := time.Since(start)
		if c.waits {
			if err != nil {
				t.Fatalf("%s serving %s: %v after %v, want to wait for the lock", c.self, c.caller, err, took)
			}
			r()
			continue
		}
		var ce *events.CodedError
		if !errors.As(err, &ce) || ce.Code != events.CodeBusy {
			t.Fatalf("%s serving %s: %v, want busy", c.self, c.caller, err)
		}
		if took > 40*time.Millisecond {
			t.Fatalf("%s serving %s: busy after %v, want at once", c.self, c.caller, took)
		}
	}
}

// TestConfigureWaitsForHoldersAndNewHoldersWaitBehindIt: acquireAll waits
// for every pair's holder, and a pair asked for meanwhile is not handed
// out ahead of it.
func TestConfigureWaitsForHoldersAndNewHoldersWaitBehindIt(t *testing.T) {
	var l locks
	ctx := context.Background()
	r1, _ := l.acquire(ctx, "b", true)
	got := make(chan func(), 1)
	go func() {
		r, _ := l.acquireAll(ctx)
		got <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		waiting := l.exclWaiting
		l.mu.Unlock()
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("acquireAll never waited")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.acquire(ctx, "c", false); !errors.Is(err, errLocked) {
		t.Fatalf("a pair was handed out ahead of a waiting configure: %v", err)
	}
	r1()
	select {
	case rAll := <-got:
		rAll()
	case <-time.After(5 * time.Second):
		t.Fatal("acquireAll did not get the locks once free")
	}
	if n := l.size(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// TestRunEndsWithItsContextAndThenRefuses: Run returns once its context
// ends, and operations after that answer ErrStopping rather than start
// goroutines nobody waits for.
func TestRunEndsWithItsContextAndThenRefuses(t *testing.T) {
	p := newLocalProtocol(t, "n1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := p.Link(context.Background(), "n2", []storage.Subscription{sub("dog", true, true)}, Update); !errors.Is(err, ErrStopping) {
		t.Fatalf("link after Run ended: %v, want ErrStopping", err)
	}
	if _, err := p.Remove(context.Background(), "n2"); !errors.Is(err, ErrStopping) {
		t.Fatalf("remove after Run ended: %v, want ErrStopping", err)
	}
	if _, err := p.Configure(context.Background(), nil); !errors.Is(err, ErrStopping) {
		t.Fatalf("configure after Run ended: %v, want ErrStopping", err)
	}
}
