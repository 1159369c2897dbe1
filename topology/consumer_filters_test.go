package topology

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkLaneFilterUpdate measures what sets MaxLaneTables: one filter
// update (a table joining) of a lane's consumer carrying n tables.
// nats-server checks every pair of a consumer's filters for overlap on each
// update, so the cost grows with n². Run: go test -run - -bench LaneFilterUpdate ./topology/
func BenchmarkLaneFilterUpdate(b *testing.B) {
	for _, n := range []int{1, 64, 128, 256, 512, 1000, 2000} {
		b.Run(fmt.Sprintf("tables=%d", n), func(b *testing.B) {
			ts, _ := startJS(b, "o")
			ctx := context.Background()
			l := lane{Peer: "o", Name: laneName("s", "1"), Main: true, Shards: 1}
			for i := 0; i < n; i++ {
				l.Tables = append(l.Tables, tk(fmt.Sprintf("t%05d", i)))
			}
			ci, err := ts.PutConsumer(ctx, "o", l.consumerConfig("s", 1), true)
			if err != nil {
				b.Fatal(err)
			}
			l.config = &ci.Config
			r := &ReplicationReconciler{Stream: ts}
			base := l.Tables
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate between n and n+1 tables: every update changes the filters.
				l.Tables = base
				if i%2 == 0 {
					l.Tables = append(append(l.Tables[:0:0], base...), tk("extra"))
				}
				if _, err := r.updateLane(ctx, l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
