package membership

import (
	"errors"
	"testing"
	"time"
)

// TestConfirmChainsWithholdAfterAFailedWrite: once a write made for a
// caller's intent failed, later intents are not confirmed (the caller's
// notice must stay so it re-syncs us) until its whole record arrives; other
// callers are not affected; and a confirmation waits for the previous one.
func TestConfirmChainsWithholdAfterAFailedWrite(t *testing.T) {
	var c confirmChains
	p1, d1 := c.next("a")
	p2, d2 := c.next("a")
	if p1 != nil || p2 == nil {
		t.Fatal("the first confirmation must have no predecessor, the second the first")
	}
	settled := make(chan bool, 1)
	go func() { settled <- c.settle("a", p2, nil) }()
	select {
	case <-settled:
		t.Fatal("the second confirmation settled before the first")
	case <-time.After(50 * time.Millisecond):
	}
	if c.settle("a", p1, errors.New("disk full")) {
		t.Fatal("a failed write was confirmed")
	}
	close(d1)
	if <-settled {
		t.Fatal("a write after a failed one was confirmed")
	}
	close(d2)
	p3, d3 := c.next("b")
	if !c.settle("b", p3, nil) {
		t.Fatal("another caller's writes were withheld")
	}
	close(d3)
	c.resynced("a")
	p4, d4 := c.next("a")
	if !c.settle("a", p4, nil) {
		t.Fatal("still withheld after the caller re-synced its whole record")
	}
	close(d4)
}
