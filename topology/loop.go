package topology

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/clusterd/clusterd/events"
	"go.uber.org/zap"
)

// Status is what a worker last achieved, for cluster_status and /readyz.
type Status struct {
	Converged   bool      `json:"converged"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Failures    int       `json:"failures"`
}

// ReconcileFunc converges one concern and reports whether it had to change
// anything. It must be idempotent and learn everything from storage and the
// servers, nothing from what woke it.
type ReconcileFunc func(ctx context.Context) (changed bool, err error)

// Loop runs a ReconcileFunc on start-up, on every trigger and on a periodic
// resync (with jitter), retrying failures with capped exponential backoff
// forever.
type Loop struct {
	Name       string
	Reconcile  ReconcileFunc
	Trigger    <-chan struct{}
	Resync     time.Duration
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MinInterval, when set, spaces triggered passes at least this far
	// apart (start to start): a burst of changes — a client flipping
	// subscriptions in a loop — is converged in one pass per interval
	// instead of one per change, while a change after a quiet spell is
	// taken at once.
	MinInterval time.Duration
	// MaxDuty, when set (0 < MaxDuty < 1), caps the share of time a burst of
	// triggers keeps the loop busy: after a pass that took d, a triggered
	// pass waits until d/MaxDuty has passed since the previous one began.
	// A pass's cost can grow with what the servers must do for it (a new
	// JetStream source makes nats-server scan the stream backwards), and a
	// client changing subscriptions in a loop should not turn that into a
	// busy core; a change after a quiet spell is still taken at once.
	MaxDuty float64
	Log     *zap.Logger
	Metrics *events.Metrics
	// Backlog, when set, counts the items still to converge after a pass;
	// it feeds the worker's queue depth gauge.
	Backlog func() int
	// Requeue, when set, is asked after a successful pass how soon the
	// next must come (0: at the resync): work that waits on the servers
	// (a catch-up lane reaching its main lane) is looked at again soon.
	Requeue func() time.Duration

	mu       sync.Mutex
	status   Status
	once     sync.Once
	firstOK  chan struct{}
	kick     chan struct{}
	initOnce sync.Once
}

func (l *Loop) init() {
	l.initOnce.Do(func() {
		l.firstOK = make(chan struct{})
		l.kick = make(chan struct{}, 1)
		if l.Resync == 0 {
			l.Resync = 5 * time.Second
		}
		if l.MinBackoff == 0 {
			l.MinBackoff = 50 * time.Millisecond
		}
		if l.MaxBackoff == 0 {
			l.MaxBackoff = 5 * time.Second
		}
		if l.Log == nil {
			l.Log = zap.NewNop()
		}
	})
}

// Kick asks for a reconcile pass soon; it never blocks.
func (l *Loop) Kick() {
	l.init()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Converged is closed after the first successful pass.
func (l *Loop) Converged() <-chan struct{} {
	l.init()
	return l.firstOK
}

// Status returns the outcome of the latest pass.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Run reconciles until ctx ends, then returns nil: a failing pass is
// retried, never the end of the loop.
func (l *Loop) Run(ctx context.Context) error {
	l.init()
	backoff := l.MinBackoff
	for {
		start := time.Now()
		changed, err := l.Reconcile(ctx)
		if ctx.Err() != nil {
			return nil
		}
		took := time.Since(start)
		l.record(start, changed, err)
		var wait time.Duration
		if err != nil {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, l.MaxBackoff)
		} else {
			backoff = l.MinBackoff
			wait = l.Resync - l.Resync/10 + rand.N(l.Resync/5+1)
			if l.Requeue != nil {
				if d := l.Requeue(); d > 0 {
					wait = min(wait, d)
				}
			}
		}
		// Triggers that came while the pass ran mean a burst is under way:
		// the next pass is paced (MaxDuty), unless it was asked for
		// explicitly (Kick: a peer restarted). Otherwise wait for one.
		busy, kicked := l.pending()
		triggered := busy
		if !busy {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-l.Trigger:
				triggered = true
			case <-l.kick:
				triggered = true
			case <-t.C:
			}
			t.Stop()
		}
		spacing := l.MinInterval
		if busy && !kicked && l.MaxDuty > 0 && l.MaxDuty < 1 {
			spacing = max(spacing, time.Duration(float64(took)/l.MaxDuty))
		}
		if d := spacing - time.Since(start); triggered && d > 0 {
			// A Kick ends the pacing: it asks for a pass now (measured: a
			// peer's restart waited 12 s behind a pass paced at 4× its
			// length, one that had waited on that peer while it was down).
			select {
			case <-ctx.Done():
				return nil
			case <-l.kick:
				if d := l.MinInterval - time.Since(start); d > 0 {
					time.Sleep(d)
				}
			case <-time.After(d):
			}
		}
	}
}

// pending takes a trigger or kick that is already waiting, if any, and says
// whether it was a kick.
func (l *Loop) pending() (pending, kicked bool) {
	select {
	case <-l.kick:
		return true, true
	default:
	}
	select {
	case <-l.Trigger:
		return true, false
	case <-l.kick:
		return true, true
	default:
		return false, false
	}
}

func (l *Loop) record(start time.Time, changed bool, err error) {
	took := time.Since(start)
	result := "converged"
	if err != nil {
		result = "error"
	} else if changed {
		result = "changed"
	}
	if l.Metrics != nil {
		l.Metrics.ReconcileResults.WithLabelValues(l.Name, result).Inc()
		l.Metrics.ReconcileSeconds.WithLabelValues(l.Name).Observe(took.Seconds())
		if l.Backlog != nil {
			l.Metrics.QueueDepth.WithLabelValues(l.Name).Set(float64(l.Backlog()))
		}
	}
	l.mu.Lock()
	l.status.LastAttempt = start
	if err != nil {
		l.status.Converged = false
		l.status.LastError = err.Error()
		l.status.Failures++
	} else {
		l.status = Status{Converged: true, LastAttempt: start, LastSuccess: time.Now()}
	}
	failures := l.status.Failures
	l.mu.Unlock()
	switch {
	case err != nil:
		// Log the first failure and then every tenth, so a peer that stays down
		// does not flood the log.
		if failures == 1 || failures%10 == 0 {
			l.Log.Warn("reconcile failed", zap.String("worker", l.Name), zap.Int("failures", failures), zap.Error(err))
		}
	case changed:
		l.Log.Info("reconciled", zap.String("worker", l.Name), zap.Duration("took", took))
	}
	if err == nil {
		l.once.Do(func() { close(l.firstOK) })
	}
}
