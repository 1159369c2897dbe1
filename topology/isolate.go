package topology

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
)

// validName says whether a stored peer or table may be replicated: names
// stored before the naming rule (storage.NameProblem) would make nats-server
// refuse every source set they are in, so the worker leaves them out; they are
// reported on their own subscription (cluster_status) and at start.
func validName(peer string, k storage.TableKey) bool {
	return storage.NameProblem(peer) == "" && (k == storage.TableKey{} || storage.TableNameProblem(k) == "")
}

// setSourcesIsolating applies keep plus added. Should JetStream refuse the
// whole set, it keeps what it had (keep), then adds the new groups one at a
// time, so one group it refuses costs only that group's peer a converged
// state (its error lands in peerErrs) and every other group is applied. It
// returns the groups now on the stream; an error only when even keep is
// refused.
func (r *ReplicationReconciler) setSourcesIsolating(ctx context.Context, keep, added []sourceGroup, peerErrs map[string]error) ([]sourceGroup, error) {
	all := append(append([]sourceGroup{}, keep...), added...)
	err := r.Stream.SetSources(ctx, sources(all))
	if err == nil || len(added) == 0 || ctx.Err() != nil {
		return all, err
	}
	if err := r.Stream.SetSources(ctx, sources(keep)); err != nil {
		return nil, err
	}
	applied := append([]sourceGroup{}, keep...)
	for _, g := range added {
		try := append(append([]sourceGroup{}, applied...), g)
		if err := r.Stream.SetSources(ctx, sources(try)); err != nil {
			if ctx.Err() != nil {
				return applied, err
			}
			names := make([]string, len(g.Tables))
			for i, k := range g.Tables {
				names[i] = k.String()
			}
			peerErrs[g.Peer] = fmt.Errorf("JetStream refused the source for %s: %w", strings.Join(names, ", "), err)
			continue
		}
		applied = try
	}
	return applied, nil
}

// forgetDeparted drops bookkeeping of shards no longer on the stream (their
// peer was removed), so the map stays as large as the current setup.
func forgetDeparted(m map[string]time.Time, current map[string][]sourceGroup) {
	for k := range m {
		if _, ok := current[k]; !ok {
			delete(m, k)
		}
	}
}
