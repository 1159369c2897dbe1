package topology

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Time is the subject of these tests, so they run in a synctest bubble: the
// clock is fake and moves only when every goroutine of the bubble is blocked,
// which makes the pacing exact and the assertions independent of how loaded
// the machine is (a real-clock version could not fail on a slow machine).

// TestLoopMinIntervalCoalescesBursts: a burst of triggers right after a
// pass is taken in one later pass, and a trigger after a quiet spell runs at
// once.
func TestLoopMinIntervalCoalescesBursts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var passes atomic.Int32
		trigger := make(chan struct{}, 1)
		l := &Loop{
			Name:        "test",
			Reconcile:   func(context.Context) (bool, error) { passes.Add(1); return true, nil },
			Trigger:     trigger,
			Resync:      time.Hour,
			MinInterval: time.Second,
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go l.Run(ctx)
		<-l.Converged()
		start := time.Now()
		for range 50 {
			select {
			case trigger <- struct{}{}:
			default:
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Until(start.Add(time.Second - time.Millisecond)))
		synctest.Wait()
		if n := passes.Load(); n != 1 {
			t.Fatalf("%d passes within %v of a burst, want the first one only", n, time.Since(start))
		}
		time.Sleep(time.Until(start.Add(time.Second)))
		synctest.Wait()
		if n := passes.Load(); n != 2 {
			t.Fatalf("%d passes %v after a burst, want the burst converged in one pass", n, time.Since(start))
		}
		// The burst needed one pass (plus at most one for the trigger left
		// in the channel), not fifty.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := passes.Load(); n > 3 {
			t.Fatalf("%d passes for one burst", n)
		}
		// After a quiet spell a trigger runs at once.
		before := passes.Load()
		sent := time.Now()
		trigger <- struct{}{}
		synctest.Wait()
		if n := passes.Load(); n != before+1 || time.Since(sent) != 0 {
			t.Fatalf("a trigger after a quiet spell: %d passes after %v, want one at once", n-before, time.Since(sent))
		}
	})
}

// TestLoopMaxDutyPacesBursts: while triggers keep coming, passes that take d
// are spaced d/MaxDuty apart; a single trigger right after a pass (nothing
// came while it ran) is taken at once.
func TestLoopMaxDutyPacesBursts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const took = 40 * time.Millisecond
		var passes atomic.Int32
		ended := make(chan time.Time, 100)
		trigger := make(chan struct{}, 1)
		l := &Loop{
			Name: "test",
			Reconcile: func(context.Context) (bool, error) {
				time.Sleep(took) // the pass's cost, on the bubble's clock
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
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go l.Run(ctx)
		<-l.Converged()
		<-ended

		// A single trigger shortly after a pass runs at once, not took/MaxDuty
		// (160 ms) after the pass began.
		time.Sleep(10 * time.Millisecond)
		sent := time.Now()
		trigger <- struct{}{}
		if got := (<-ended).Sub(sent); got != took {
			t.Fatalf("a lone trigger after a pass ended %v after it was sent, want %v (the pass itself)", got, took)
		}

		// A sustained burst: one pass per 160 ms, not one per 40 ms.
		before := passes.Load()
		burst := 1200 * time.Millisecond
		for end := time.Now().Add(burst); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
		n := passes.Load() - before
		paced := int32(burst / (4 * took))
		if n > paced+2 || n < paced-1 {
			t.Fatalf("%d passes during a %v burst of triggers, want %d..%d (unpaced: ~%d)", n, burst, paced-1, paced+2, burst/took)
		}
	})
}
