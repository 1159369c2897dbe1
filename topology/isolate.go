package topology

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// validName says whether a stored peer or table may be replicated: names
// stored before the naming rule (storage.NameProblem) would make nats-server
// refuse every source set they are in, so the worker leaves them out; they are
// reported on their own subscription (cluster_status) and at start.
func validName(peer string, k storage.TableKey) bool {
	return storage.NameProblem(peer) == "" && (k == storage.TableKey{} || storage.TableNameProblem(k) == "")
}

// setSourcesIsolating applies keep plus the added lanes' sources. Should
// JetStream refuse the whole set, it keeps what it had (keep), then adds the
// new lanes one at a time, so one lane it refuses costs only that lane's peer
// a converged state (its error lands in peerErrs, its consumer is deleted)
// and every other lane is applied. It returns the lanes added; an error only
// when even keep is refused.
func (r *ReplicationReconciler) setSourcesIsolating(ctx context.Context, keep []*jetstream.StreamSource, added []lane, peerErrs map[string]error) ([]lane, error) {
	all := append([]*jetstream.StreamSource{}, keep...)
	for _, l := range added {
		all = append(all, l.source())
	}
	err := r.Stream.SetSources(ctx, all)
	if err == nil || len(added) == 0 || ctx.Err() != nil {
		return added, err
	}
	if err := r.Stream.SetSources(ctx, keep); err != nil {
		return nil, err
	}
	applied := append([]*jetstream.StreamSource{}, keep...)
	var ok []lane
	for _, l := range added {
		try := append(append([]*jetstream.StreamSource{}, applied...), l.source())
		if err := r.Stream.SetSources(ctx, try); err != nil {
			if ctx.Err() != nil {
				return ok, err
			}
			names := make([]string, len(l.Tables))
			for i, k := range l.Tables {
				names[i] = k.String()
			}
			peerErrs[l.Peer] = fmt.Errorf("JetStream refused the source for %s: %w", strings.Join(names, ", "), err)
			_ = r.Stream.DeleteConsumer(ctx, l.Peer, l.Name)
			continue
		}
		applied, ok = try, append(ok, l)
	}
	return ok, nil
}

// forgetDeparted drops bookkeeping of lanes no longer on the stream (their
// peer was removed, or they were merged or rebuilt), so the map stays as
// large as the current setup.
func forgetDeparted(m map[string]time.Time, current map[string][]lane) {
	names := map[string]bool{}
	for _, ls := range current {
		for _, l := range ls {
			names[l.Name] = true
		}
	}
	for k := range m {
		if !names[k] {
			delete(m, k)
		}
	}
}
