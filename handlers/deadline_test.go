package handlers

import (
	"testing"
	"time"
)

// Every operation has a deadline derived from clustering.requestTimeout: at
// the default, every reply but cluster_network's (which waits as long as its
// request asks) comes within the nats CLI's 5 s; a longer request timeout
// lengthens them.
func TestEveryOperationHasADeadline(t *testing.T) {
	for _, c := range []struct {
		requestTimeout time.Duration
		want           time.Duration
	}{
		{0, 4500 * time.Millisecond},
		{2 * time.Second, 4500 * time.Millisecond},
		{10 * time.Second, 20500 * time.Millisecond},
	} {
		o := New(Ops{RequestTimeout: c.requestTimeout, Users: &UserOps{}})
		ops := o.Operations()
		if len(ops) < 20 {
			t.Fatalf("%d operations", len(ops))
		}
		for _, op := range ops {
			want := c.want
			if op.Name == "cluster_network" {
				want = time.Minute + c.requestTimeout
				if c.requestTimeout == 0 {
					want = time.Minute + 2*time.Second
				}
			}
			if op.Deadline != want {
				t.Errorf("requestTimeout %v: %s has deadline %v, want %v", c.requestTimeout, op.Name, op.Deadline, want)
			}
		}
	}
}
