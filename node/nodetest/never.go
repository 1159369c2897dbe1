package nodetest

import (
	"testing"
	"time"
)

// Never fails the test as soon as cond holds during window. It is for
// absence — a transaction that must not arrive, a duplicate that must not
// appear — which no condition can signal: the window is how long a wrong
// delivery is given to show, not a wait for convergence (wait for that first,
// with Eventually).
func Never(t testing.TB, window time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(window)
	for {
		if cond() {
			t.Fatalf("%s", what)
		}
		if time.Now().After(end) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}
