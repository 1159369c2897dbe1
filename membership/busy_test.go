package membership

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
)

// TestBusyPeerIsRetriedThenRefusedWithNothingChanged: a peer that keeps
// answering busy (its lock for us stays taken) makes an update retry for
// RetryFor and then fail with *BusyError; our record is put back as it
// was, the peer's is untouched, and no notice is left to "re-sync" a
// change that never happened. Once the peer lets go, the same update goes
// through.
func TestBusyPeerIsRetriedThenRefusedWithNothingChanged(t *testing.T) {
	srv := startNATS(t)
	z := newMember(t, srv, "z", nil) // sorts after b: b answers it busy at once
	b := newMember(t, srv, "b", nil)
	z.cfg.RetryFor = 300 * time.Millisecond
	z.createTables(t, "dog")
	b.createTables(t, "dog")
	ctx := context.Background()
	if _, err := z.Link(ctx, "b", []storage.Subscription{sub("dog", true, true)}, Add); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := mirrored(z, b); return ok })

	release, err := b.locks.acquire(ctx, "z", false)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = z.Link(ctx, "b", []storage.Subscription{sub("dog", false, true)}, Update)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Peer != "b" || busy.Tries < 2 {
		t.Fatalf("update while b is busy: %v, want a *BusyError after retries", err)
	}
	if took := time.Since(start); took < z.cfg.RetryFor || took > 10*z.cfg.RetryFor {
		t.Fatalf("gave up after %v, want about RetryFor (%v)", took, z.cfg.RetryFor)
	}
	rec, _, _ := z.store.Node("b")
	if s := rec.Subscriptions[rec.Find(sub("dog", true, true).Key())]; !s.Subscribe {
		t.Fatalf("z's record kept the refused change: %+v", s)
	}
	if ns, _ := z.store.Notices(); len(ns) != 0 {
		t.Fatalf("notices left after a refused change: %+v", ns)
	}
	if ok, why := mirrored(z, b); !ok {
		t.Fatalf("records differ after a refused change: %s", why)
	}

	release()
	if _, err := z.Link(ctx, "b", []storage.Subscription{sub("dog", false, true)}, Update); err != nil {
		t.Fatalf("update once b let go: %v", err)
	}
	waitFor(t, func() bool { ok, _ := mirrored(z, b); return ok })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
