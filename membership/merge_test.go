package membership

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/storage"
)

func TestMergeSubscriptions(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	now := t0.Add(48 * time.Hour)
	sub := func(table string, s, p bool, start *time.Time, epoch int64) storage.Subscription {
		return storage.Subscription{Database: "data", Table: table, Subscribe: s, Publish: p, StartTime: start, Epoch: epoch}
	}
	existing := []storage.Subscription{sub("a", true, true, &t0, 0), sub("b", true, false, &t0, 7)}
	cases := []struct {
		name     string
		incoming []storage.Subscription
		replace  bool
		want     []storage.Subscription
	}{
		{"upsert keeps others and start", []storage.Subscription{sub("a", false, true, nil, 0)}, false,
			[]storage.Subscription{sub("a", false, true, &t0, 0), sub("b", true, false, &t0, 7)}},
		{"new table starts now", []storage.Subscription{sub("c", true, true, nil, 0)}, false,
			[]storage.Subscription{sub("a", true, true, &t0, 0), sub("b", true, false, &t0, 7), sub("c", true, true, &now, 0)}},
		{"same start keeps epoch", []storage.Subscription{sub("b", true, true, &t0, 0)}, false,
			[]storage.Subscription{sub("a", true, true, &t0, 0), sub("b", true, true, &t0, 7)}},
		{"new start re-sources", []storage.Subscription{sub("a", true, true, &t1, 0)}, false,
			[]storage.Subscription{sub("a", true, true, &t1, now.UnixNano()), sub("b", true, false, &t0, 7)}},
		{"replace drops others", []storage.Subscription{sub("b", true, true, nil, 0)}, true,
			[]storage.Subscription{sub("b", true, true, &t0, 7)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mergeSubscriptions(existing, c.incoming, c.replace, now)
			if len(got) != len(c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			for i := range got {
				g, w := got[i], c.want[i]
				if g.Key() != w.Key() || g.Subscribe != w.Subscribe || g.Publish != w.Publish || g.Epoch != w.Epoch ||
					(g.StartTime == nil) != (w.StartTime == nil) || (g.StartTime != nil && !g.StartTime.Equal(*w.StartTime)) {
					t.Fatalf("[%d] got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}
