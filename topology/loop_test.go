package topology

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopMinIntervalCoalescesBursts: a burst of triggers right after a
// pass is taken in one later pass, and a trigger after a quiet spell runs at
// once.
func TestLoopMinIntervalCoalescesBursts(t *testing.T) {
	var passes atomic.Int32
	trigger := make(chan struct{}, 1)
	l := &Loop{
		Name:        "test",
		Reconcile:   func(context.Context) (bool, error) { passes.Add(1); return true, nil },
		Trigger:     trigger,
		Resync:      time.Hour,
		MinInterval: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	<-l.Converged()
	start := time.Now()
	for i := 0; i < 50; i++ {
		select {
		case trigger <- struct{}{}:
		default:
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := passes.Load(); n != 1 && time.Since(start) < 900*time.Millisecond {
		t.Fatalf("%d passes within %v of a burst, want the first one only", n, time.Since(start))
	}
	deadline := time.Now().Add(5 * time.Second)
	for passes.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the burst was never converged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The burst needed one pass (plus at most one for the trigger left in
	// the channel), not fifty.
	time.Sleep(2500 * time.Millisecond)
	if n := passes.Load(); n > 3 {
		t.Fatalf("%d passes for one burst", n)
	}
	// After a quiet spell a trigger runs at once.
	before := passes.Load()
	sent := time.Now()
	trigger <- struct{}{}
	for passes.Load() == before {
		if time.Since(sent) > 500*time.Millisecond {
			t.Fatal("a trigger after a quiet spell waited")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoopMaxDutyPacesBursts: while triggers keep coming, passes that take d
// are spaced d/MaxDuty apart; a single trigger right after a pass (nothing
// came while it ran) is taken at once.
func TestLoopMaxDutyPacesBursts(t *testing.T) {
	const took = 40 * time.Millisecond
	var passes atomic.Int32
	ended := make(chan time.Time, 100)
	trigger := make(chan struct{}, 1)
	l := &Loop{
		Name: "test",
		Reconcile: func(context.Context) (bool, error) {
			time.Sleep(took)
			passes.Add(1)
			select {
			case ended <- time.Now():
			default:
			}
			return true, nil
		},
		Trigger: trigger,
		Resync:  time.Hour,
		MaxDuty: 0.25,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	<-l.Converged()
	<-ended

	// A single trigger shortly after a pass runs at once, not took/MaxDuty
	// (160 ms) after the pass began.
	time.Sleep(10 * time.Millisecond)
	sent := time.Now()
	trigger <- struct{}{}
	if got := (<-ended).Sub(sent); got > took+80*time.Millisecond {
		t.Fatalf("a lone trigger after a pass took %v to be run", got)
	}

	// A sustained burst: at most one pass per 160 ms, not one per 40 ms.
	before := passes.Load()
	burst := 1200 * time.Millisecond
	for end := time.Now().Add(burst); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	n := passes.Load() - before
	if max := int32(burst/(4*took)) + 2; n > max || n < 3 {
		t.Fatalf("%d passes during a %v burst of triggers, want 3..%d (unpaced: ~%d)", n, burst, max, burst/took)
	}
}
