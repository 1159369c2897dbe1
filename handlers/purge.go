package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats.go/jetstream"
)

var purgeOptionsSchema = Schema{
	{Name: "keep", Kind: kNumber, Integer: true, Min: ptr(0), Max: ptr(MaxSafeInteger)},
	{Name: "seq", Kind: kNumber, Integer: true, Min: ptr(0), Max: ptr(MaxSafeInteger)},
	{Name: "filter", Kind: kString, NonEmpty: true, MaxLen: 4 + 3*MaxNameLen + 3},
}

var purgeStreamSchema = Schema{
	{Name: "database", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "schema", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "table", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: nameToken},
	{Name: "options", Kind: kObject, Items: purgeOptionsSchema, Check: keepOrSeq},
}

// keepOrSeq refuses options with both keep and seq.
func keepOrSeq(_ string, v any) []string {
	if opts, ok := v.(map[string]any); ok && opts["keep"] != nil && opts["seq"] != nil {
		return []string{"can specify one of keep or seq"}
	}
	return nil
}

type purgeStreamRequest struct {
	TableRequest
	Options struct {
		Keep   *uint64 `json:"keep"`
		Seq    *uint64 `json:"seq"`
		Filter string  `json:"filter"`
	} `json:"options"`
}

// filterWithin says whether subject only selects transactions of table k:
// txn.<db>.<table>.<origin>, the origin a name or a wildcard.
func filterWithin(subject string, k storage.TableKey) bool {
	p := strings.Split(subject, ".")
	if len(p) != 4 || p[0] != "txn" || p[1] != k.Database || p[2] != k.Table {
		return false
	}
	o := p[3]
	return o == "*" || o == ">" || storage.NameProblem(o) == "" // a node name, by the naming rule
}

// check refuses a filter that selects another table's transactions.
func (r purgeStreamRequest) check() []string {
	k := r.key()
	if f := r.Options.Filter; f != "" && !filterWithin(f, k) {
		return []string{fmt.Sprintf("'options.filter' must be a subject of table '%s': %s with the origin node's name (or *) as last token, got '%s'",
			k, "txn."+k.Database+"."+k.Table+".<node>", f)}
	}
	return nil
}

// PurgeStreamReply is purge_stream's reply.
type PurgeStreamReply struct {
	Message string `json:"message"`
}

// PurgeStream removes this node's stored transactions of one table (all, the
// oldest beyond keep, those below seq, or only the filter subject), never
// another table's and never on another node. Replication goes on: before
// purging, the position received from each peer is recorded as an import
// floor (see storage.RaiseImportFloor), so no source resumes from before it
// and purged transactions are never imported again.
// It is validated before it is refused for clustering disabled.
func (o *Ops) PurgeStream(ctx context.Context, _ events.Caller, req purgeStreamRequest) (PurgeStreamReply, error) {
	if !o.ClusteringEnabled {
		return PurgeStreamReply{}, errClusteringDisabled
	}
	k := req.key()
	if ok, err := o.Store.HasTable(k); err != nil {
		return PurgeStreamReply{}, fmt.Errorf("load table %s: %w", k, err)
	} else if !ok {
		hasDB, err := o.Store.HasDatabase(k.Database)
		if err != nil {
			return PurgeStreamReply{}, fmt.Errorf("load database %s: %w", k.Database, err)
		}
		// Named but missing: both are named. Without a database HarperDB
		// names only the table, whatever the default database holds.
		if !hasDB && (req.Database != "" || req.Schema != "") {
			return PurgeStreamReply{}, events.Errorf(400, "Database '%s' does not exist. Table '%s' does not exist", k.Database, k.Table)
		}
		return PurgeStreamReply{}, events.Errorf(400, "Table '%s' does not exist", k.Table)
	}
	subject := o.Txn.TableFilter(k)
	if req.Options.Filter != "" {
		subject = req.Options.Filter
	}
	done := PurgeStreamReply{Message: fmt.Sprintf("Successfully purged table '%s'", k)}
	info, err := o.Txn.Info(ctx)
	if err != nil {
		return PurgeStreamReply{}, events.Wrap(503, err, "Unable to purge table '"+k.String()+"': transaction store not available: "+err.Error())
	}
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(subject)}
	switch {
	case req.Options.Seq != nil && *req.Options.Seq <= 1, info.State.LastSeq == 0:
		// Nothing lies below sequence 1 (JetStream would read 0 as "all").
		return done, nil
	case req.Options.Seq != nil:
		opts = append(opts, jetstream.WithPurgeSequence(*req.Options.Seq))
	case req.Options.Keep != nil && *req.Options.Keep > 0:
		opts = append(opts, jetstream.WithPurgeKeep(*req.Options.Keep))
	default:
		// Everything stored so far: what arrives while the floors are read
		// stays, so the floors cover exactly what is purged.
		opts = append(opts, jetstream.WithPurgeSequence(info.State.LastSeq+1))
	}
	if err := o.raiseImportFloors(ctx, k, subject); err != nil {
		return PurgeStreamReply{}, events.Wrap(503, err, "Unable to purge table '"+k.String()+"': "+err.Error())
	}
	if err := o.Loss.Purging(ctx, func() error { return o.Txn.Purge(ctx, opts...) }); err != nil {
		return PurgeStreamReply{}, events.Wrap(500, err, "Unable to purge table '"+k.String()+"': "+err.Error())
	}
	// The purge changed the stream, not the store (the floors' own commit woke
	// the worker before the purge): wake it again to re-anchor past the floors.
	o.Bus.Publish(events.NodesChanged)
	return done, nil
}

// raiseImportFloors records, for every peer whose transactions on table k
// the purge of subject may remove, the last one received here.
func (o *Ops) raiseImportFloors(ctx context.Context, k storage.TableKey, subject string) error {
	nodes, err := o.Store.Nodes()
	if err != nil {
		return fmt.Errorf("load nodes: %w", err)
	}
	for _, n := range nodes {
		origin := topology.OriginSubject(k, n.Name)
		if i := n.Find(k); i < 0 || !subjectCovers(subject, origin) {
			continue
		}
		last, err := o.Txn.LastImportedSeq(ctx, origin)
		if err != nil {
			return fmt.Errorf("read the last transaction received from %s: %w", n.Name, err)
		}
		if err := o.Store.RaiseImportFloor(n.Name, k, last); err != nil {
			return fmt.Errorf("record import floor for %s: %w", n.Name, err)
		}
	}
	return nil
}

// subjectCovers says whether filter (as filterWithin allows) matches subject.
func subjectCovers(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	if len(f) != len(s) {
		return false
	}
	for i := range f {
		if f[i] != "*" && f[i] != ">" && f[i] != s[i] {
			return false
		}
	}
	return true
}
