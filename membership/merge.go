package membership

import (
	"time"

	"github.com/clusterd/clusterd/storage"
)

// mergeSubscriptions returns existing with incoming applied: incoming
// subscriptions overwrite the ones for the same table (upsert) or, when
// replace is set, become the whole list. A subscription keeps its start time
// unless the request names one; a start time that differs from the stored one
// (or any start time on a new subscription) sets a new epoch, asking the
// replication worker to re-source that table from the start time.
func mergeSubscriptions(existing, incoming []storage.Subscription, replace bool, now time.Time) []storage.Subscription {
	// The incoming list, one per table (a later one wins, in the first
	// one's place); only it is indexed, so a change of one subscription
	// costs one pass over the record, whatever its size.
	idx := make(map[storage.TableKey]int, len(incoming))
	in := make([]storage.Subscription, 0, len(incoming))
	for _, s := range incoming {
		if i, ok := idx[s.Key()]; ok {
			in[i] = s
			continue
		}
		idx[s.Key()] = len(in)
		in = append(in, s)
	}
	resolve := func(in storage.Subscription, old *storage.Subscription) storage.Subscription {
		s := in
		switch {
		case in.StartTime == nil && old != nil:
			s.StartTime, s.Epoch = old.StartTime, old.Epoch
		case in.StartTime == nil:
			t := now
			s.StartTime, s.Epoch = &t, 0
		case old != nil && old.StartTime != nil && old.StartTime.Equal(*in.StartTime):
			s.Epoch = old.Epoch
		default:
			s.Epoch = now.UnixNano()
		}
		return s
	}
	olds := make([]*storage.Subscription, len(in))
	placed := make([]bool, len(in))
	var out []storage.Subscription
	if !replace {
		out = make([]storage.Subscription, 0, len(existing)+len(in))
	}
	for j := range existing {
		i, ok := idx[existing[j].Key()]
		if !ok {
			if !replace {
				out = append(out, existing[j])
			}
			continue
		}
		olds[i] = &existing[j]
		if !replace {
			out = append(out, resolve(in[i], olds[i]))
			placed[i] = true
		}
	}
	for i, s := range in {
		if !placed[i] {
			out = append(out, resolve(s, olds[i]))
		}
	}
	return out
}

func mirrorAll(subs []storage.Subscription) []storage.Subscription {
	out := make([]storage.Subscription, len(subs))
	for i, s := range subs {
		out[i] = s.Mirror()
	}
	return out
}
