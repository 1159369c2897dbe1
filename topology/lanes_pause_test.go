package topology

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPausedLaneDeliversNothing: merges and joins rest on a paused lane's
// consumer delivering nothing past the position read after the pause, while
// transactions keep coming.
func TestPausedLaneDeliversNothing(t *testing.T) {
	ts, js := startJS(t, "a")
	ctx := context.Background()
	l := lane{Peer: "a", Name: "repl_s_1", Main: true, Tables: keys("x")}
	cfg := l.consumerConfig("s", 1)
	ci, err := ts.PutConsumer(ctx, "a", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	var maxSeq atomic.Uint64
	sub, _ := ts.NC.Subscribe(cfg.DeliverSubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		md, err := m.Metadata()
		if err == nil {
			maxSeq.Store(max(maxSeq.Load(), md.Sequence.Stream))
		}
	})
	defer sub.Unsubscribe()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			js.PublishAsync("txn.data.x.a", []byte("m"))
			js.PublishAsync("txn.data.y.a", []byte("m"))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	l.config = &ci.Config
	r := &ReplicationReconciler{Stream: ts}
	for i := 0; i < 50; i++ {
		time.Sleep(5 * time.Millisecond)
		pc, err := r.pauseLane(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		at := maxSeq.Load()
		time.Sleep(20 * time.Millisecond)
		after := maxSeq.Load()
		if after > pc.Delivered.Stream {
			t.Errorf("round %d: paused at delivered %d (seen %d at the reply), yet %d was delivered", i, pc.Delivered.Stream, at, after)
		}
		if err := r.resumeLane(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	_ = jetstream.ConsumerInfo{}
}
