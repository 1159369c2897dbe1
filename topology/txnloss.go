package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Lost transactions. JetStream may come back from damaged files (a cut or
// corrupt message block) holding fewer transactions than it acknowledged,
// and nats-server 2.15 does not always say so (StreamState.Lost stayed empty
// for a truncated and for a corrupted block). So at a clean stop the node
// writes how many transactions the stream holds per subject, and at the next
// start compares: what is missing is lost. Then it reads the stream through
// once: a record that is counted but cannot be read is lost too. A peer's transactions the node had
// replicated are fetched again from the peer (the subscription is re-sourced:
// the peer's transactions of that table are purged here and imported again
// from the subscription's start, so each arrives exactly once and in order);
// the node's own, or those no peer gives back, are reported as lost: an error
// log, clusterd_txn_lost_messages_total, a record in the state store that
// cluster_status, describe_all and /readyz show.

// txnLossMetaKey holds the loss records (JSON) in the state store.
const txnLossMetaKey = "txn_loss"

// TxnLossRecord is what is known about the transactions lost on one subject
// (txn.<db>.<table>.<origin>).
type TxnLossRecord struct {
	Subject    string           `json:"subject"`
	Table      storage.TableKey `json:"table"`
	Origin     string           `json:"origin"`
	Expected   uint64           `json:"expected"` // held at the last clean stop
	Found      uint64           `json:"found"`    // held after the restart
	DetectedAt time.Time        `json:"detected_at"`
	// RefetchFrom is the peer the transactions are fetched again from;
	// Recovered is set once this node holds Expected again.
	RefetchFrom string `json:"refetch_from,omitempty"`
	// RefetchEpoch is the subscription epoch that re-sources the table: the
	// re-fetch has started once the replication worker applied it.
	RefetchEpoch int64 `json:"refetch_epoch,omitempty"`
	Recovered    bool  `json:"recovered,omitempty"`
	// Note qualifies the loss (maxAge expiry can look the same).
	Note string `json:"note,omitempty"`
}

// Lost is how many transactions are missing.
func (r TxnLossRecord) Lost() uint64 { return r.Expected - min(r.Found, r.Expected) }

// Problem says what a user should know about the record, "" once recovered.
func (r TxnLossRecord) Problem() string {
	if r.Recovered {
		return ""
	}
	msg := fmt.Sprintf("%d of %d transactions from %s on %s were lost from this node's transaction stream (damaged JetStream files, detected at %s)",
		r.Lost(), r.Expected, r.Origin, r.Table, r.DetectedAt.Format(time.RFC3339))
	if r.RefetchFrom != "" {
		msg += "; fetching them again from " + r.RefetchFrom
	} else {
		msg += "; no peer replicates them to this node, so they cannot be fetched again"
	}
	if r.Note != "" {
		msg += " (" + r.Note + ")"
	}
	return msg
}

// TxnLoss detects and reports lost transactions; see the top of this file.
type TxnLoss struct {
	Stream *TxnStream
	Store  *storage.Store
	Log    *zap.Logger
	// CountsFile is where the clean stop writes the per-subject counts.
	CountsFile string
	// Lost counts lost transactions when detected (nil: not counted).
	Lost prometheus.Counter
	// Refetch asks the replication worker to act (publishes NodesChanged).
	Refetch func()

	mu      sync.Mutex
	records []TxnLossRecord

	// countsMu serializes writing the counts file with purges, which lower
	// counts on purpose; periodic says KeepCounts runs.
	countsMu sync.Mutex
	periodic bool
	written  uint64 // the stream's last sequence when the counts were written
}

type txnCounts struct {
	Stopped  time.Time         `json:"stopped"`
	LastSeq  uint64            `json:"last_seq"`
	Subjects map[string]uint64 `json:"subjects"`
}

// subjectCounts reads how many transactions the stream holds per subject.
func (l *TxnLoss) subjectCounts(ctx context.Context) (txnCounts, error) {
	s, err := l.Stream.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return txnCounts{}, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("txn.>"))
	if err != nil {
		return txnCounts{}, err
	}
	c := txnCounts{LastSeq: info.State.LastSeq, Subjects: map[string]uint64{}}
	for subj, n := range info.State.Subjects {
		if _, _, ok := ParseSubject(subj); ok {
			c.Subjects[subj] = n
		}
	}
	return c, nil
}

// SaveCounts writes the per-subject counts for the next start to compare
// (at a clean stop, after the workers stopped and before the servers shut).
func (l *TxnLoss) SaveCounts(ctx context.Context) error {
	l.countsMu.Lock()
	defer l.countsMu.Unlock()
	return l.saveCounts(ctx)
}

func (l *TxnLoss) saveCounts(ctx context.Context) error {
	c, err := l.subjectCounts(ctx)
	if err != nil {
		return err
	}
	c.Stopped = time.Now().UTC()
	l.written = c.LastSeq
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := l.CountsFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.CountsFile)
}

// countsEvery is how often a running node rewrites its counts, so that a
// crash (kill -9, power loss) leaves counts at most this old to compare with.
const countsEvery = 5 * time.Second

// KeepCounts rewrites the counts file every countsEvery until ctx ends, so
// damage found after a crash is detected too. Not with stream limits
// (maxAge, maxBytes, maxMsgs): they discard transactions between two
// writes, which would look lost. A peer's transactions purged by the
// replication worker (a new start_time) in the seconds before a crash look
// lost too, and are then fetched again; purge_stream goes through Purging.
func (l *TxnLoss) KeepCounts(ctx context.Context) {
	lim := l.Stream.Limits
	if lim.MaxAge > 0 || lim.MaxBytes > 0 || lim.MaxMsgs > 0 {
		return
	}
	l.countsMu.Lock()
	l.periodic = true
	l.countsMu.Unlock()
	t := time.NewTicker(countsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Nothing stored since the last write: the counts stand (a
		// stream info listing every subject is not free at 10k tables).
		if last, err := l.Stream.LastSeq(ctx); err == nil && last == l.writtenSeq() {
			continue
		}
		if err := l.SaveCounts(ctx); err != nil && ctx.Err() == nil {
			l.Log.Debug("transaction counts not written", zap.Error(err))
		}
	}
}

func (l *TxnLoss) writtenSeq() uint64 {
	l.countsMu.Lock()
	defer l.countsMu.Unlock()
	return l.written
}

// Purging runs purge (a purge_stream) with the counts out of the way: the
// file is removed first and written again after, so a crash in between
// compares nothing rather than the counts from before the purge.
func (l *TxnLoss) Purging(ctx context.Context, purge func() error) error {
	if l == nil {
		return purge()
	}
	l.countsMu.Lock()
	defer l.countsMu.Unlock()
	if !l.periodic {
		return purge()
	}
	if err := os.Remove(l.CountsFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s before purging: %w", l.CountsFile, err)
	}
	err := purge()
	if serr := l.saveCounts(ctx); serr != nil {
		l.Log.Warn("transaction counts not written after a purge", zap.Error(serr))
	}
	return err
}

// Check runs once at start, when the stream is up: it loads the records of
// earlier losses, compares the stream with the counts of the last clean stop
// (then removes them: after a crash there is nothing to compare with),
// records and reports what is missing, and asks for peers' transactions to
// be fetched again.
func (l *TxnLoss) Check(ctx context.Context) error {
	if err := l.load(); err != nil {
		return err
	}
	b, err := os.ReadFile(l.CountsFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w", l.CountsFile, err)
	}
	var was txnCounts
	if err := json.Unmarshal(b, &was); err != nil {
		l.Log.Warn("transaction counts of the last stop unreadable; not compared", zap.String("file", l.CountsFile), zap.Error(err))
		return os.Remove(l.CountsFile)
	}
	now, err := l.subjectCounts(ctx)
	if err != nil {
		return err // the file stays for the next try
	}
	if was.Stopped.IsZero() {
		was.Stopped = time.Now().UTC() // written while running: the node crashed
	}
	var found []TxnLossRecord
	note := ""
	if l.Stream.Limits.MaxAge > 0 {
		note = fmt.Sprintf("or they expired: clustering.leafServer.streams.maxAge is %v and the node was down since %s", l.Stream.Limits.MaxAge, was.Stopped.Format(time.RFC3339))
	}
	for subj, n := range was.Subjects {
		if have := now.Subjects[subj]; have < n {
			p := strings.Split(subj, ".")
			found = append(found, TxnLossRecord{Subject: subj, Table: storage.TableKey{Database: p[1], Table: p[2]}, Origin: p[3],
				Expected: n, Found: have, DetectedAt: time.Now().UTC(), Note: note})
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Subject < found[j].Subject })
	if len(found) > 0 {
		if err := l.refetch(found); err != nil {
			return err
		}
	}
	return os.Remove(l.CountsFile)
}

// ReadThrough reads the stream once (headers only) up to its last sequence
// at the time of the call and compares what it could read per subject with
// what the stream's index counts: a corrupt record inside a block stays
// counted (and shown by describe_all) but can never be read or delivered.
// Subjects that already have an open loss record are left out (a re-fetch
// may be purging them). Run once after start; it costs one pass over the
// stream.
func (l *TxnLoss) ReadThrough(ctx context.Context) error {
	s, err := l.Stream.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("txn.>"))
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if last == 0 || info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"txn.>"}, DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: true,
	})
	if err != nil {
		return err
	}
	read := map[string]uint64{}
	for done := false; !done; {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > last {
				done = true
				continue
			}
			read[m.Subject()]++
			if md.Sequence.Stream == last || md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if got == 0 {
			done = true
		}
	}
	open := map[string]bool{}
	for _, r := range l.Records() {
		if !r.Recovered {
			open[r.Subject] = true
		}
	}
	var found []TxnLossRecord
	for subj, n := range info.State.Subjects {
		k, origin, ok := ParseSubject(subj)
		if !ok || open[subj] || read[subj] >= n {
			continue
		}
		found = append(found, TxnLossRecord{Subject: subj, Table: k, Origin: origin,
			Expected: n, Found: read[subj], DetectedAt: time.Now().UTC(), Note: "unreadable records: their block is corrupt"})
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Subject < found[j].Subject })
	return l.refetch(found)
}

// refetch records found losses and re-sources the tables a peer replicates
// here from that peer.
func (l *TxnLoss) refetch(found []TxnLossRecord) error {
	nodes, err := l.Store.Nodes()
	if err != nil {
		return err
	}
	subscribed := map[string]bool{} // origin subject -> a subscription pulls it
	for _, n := range nodes {
		for _, s := range n.Subscriptions {
			if s.Subscribe {
				subscribed[OriginSubject(s.Key(), n.Name)] = true
			}
		}
	}
	var total uint64
	for i, r := range found {
		total += r.Lost()
		if r.Origin != l.Stream.Node && subscribed[r.Subject] {
			epoch := time.Now().UnixNano()
			found[i].RefetchFrom, found[i].RefetchEpoch = r.Origin, epoch
			if err := l.Store.UpdateNode(r.Origin, func(n *storage.Node, exists bool) (bool, error) {
				if !exists {
					return false, nil
				}
				if j := n.Find(r.Table); j >= 0 {
					// A new epoch re-sources the table: its transactions from
					// the peer are purged here and imported again.
					n.Subscriptions[j].Epoch = epoch
				}
				return true, nil
			}); err != nil {
				return fmt.Errorf("re-source %s from %s: %w", r.Table, r.Origin, err)
			}
		}
		l.Log.Error("transactions lost from the transaction stream", zap.String("subject", r.Subject), zap.String("table", r.Table.String()),
			zap.String("origin", r.Origin), zap.Uint64("expected", r.Expected), zap.Uint64("found", r.Found),
			zap.String("refetch_from", found[i].RefetchFrom), zap.String("note", r.Note))
	}
	if l.Lost != nil {
		l.Lost.Add(float64(total))
	}
	l.mu.Lock()
	l.records = append(l.records, found...)
	l.mu.Unlock()
	if err := l.save(); err != nil {
		return err
	}
	if l.Refetch != nil {
		l.Refetch()
	}
	return nil
}

func (l *TxnLoss) load() error {
	v, err := l.Store.Meta(txnLossMetaKey)
	if err != nil || v == "" {
		return err
	}
	var rs []TxnLossRecord
	if err := json.Unmarshal([]byte(v), &rs); err != nil {
		return fmt.Errorf("read the lost-transaction records: %w", err)
	}
	l.mu.Lock()
	l.records = rs
	l.mu.Unlock()
	return nil
}

func (l *TxnLoss) save() error {
	l.mu.Lock()
	b, err := json.Marshal(l.records)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.Store.SetMeta(txnLossMetaKey, string(b))
}

// Watch reads the stream through once (ReadThrough), then marks re-fetched
// losses recovered once the stream holds what it held again. It runs until
// ctx ends.
func (l *TxnLoss) Watch(ctx context.Context) {
	if err := l.ReadThrough(ctx); err != nil && ctx.Err() == nil {
		l.Log.Warn("could not read the transaction stream through to check for unreadable transactions", zap.Error(err))
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var pending []TxnLossRecord
		l.mu.Lock()
		for _, r := range l.records {
			if r.RefetchFrom != "" && !r.Recovered {
				pending = append(pending, r)
			}
		}
		l.mu.Unlock()
		if len(pending) == 0 {
			continue
		}
		c, err := l.subjectCounts(ctx)
		if err != nil {
			continue
		}
		// Re-sourced (the worker applied the epoch: the old records were
		// purged) and holding as many as before.
		started := map[string]bool{}
		for _, r := range pending {
			applied, err := l.Store.AppliedEpoch(r.RefetchFrom, r.Table)
			started[r.Subject] = err == nil && applied >= r.RefetchEpoch
		}
		changed := false
		l.mu.Lock()
		for i, r := range l.records {
			if r.RefetchFrom != "" && !r.Recovered && started[r.Subject] && c.Subjects[r.Subject] >= r.Expected {
				l.records[i].Recovered = true
				changed = true
				l.Log.Info("lost transactions fetched again", zap.String("subject", r.Subject), zap.String("peer", r.RefetchFrom), zap.Uint64("count", r.Lost()))
			}
		}
		l.mu.Unlock()
		if changed {
			if err := l.save(); err != nil {
				l.Log.Warn("could not record recovered transactions", zap.Error(err))
			}
		}
	}
}

// Records returns the loss records (recovered ones included).
func (l *TxnLoss) Records() []TxnLossRecord {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]TxnLossRecord(nil), l.records...)
}

// Degraded says what is lost and not recovered ("" when nothing), for
// /readyz.
func (l *TxnLoss) Degraded() string {
	var parts []string
	var total uint64
	for _, r := range l.Records() {
		if !r.Recovered {
			total += r.Lost()
			parts = append(parts, r.Subject)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%d transactions lost from the transaction stream (%s); see describe_all and cluster_status", total, strings.Join(parts, ", "))
}
