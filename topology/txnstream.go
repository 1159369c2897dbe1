package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TxnStreamName is the JetStream stream on each node's leaf server that holds
// every table's transactions: the node's own (subjects txn.*.*.<node>) and
// those sourced from peers (one source group per peer, filtered to the
// subscribed tables), so replication costs NATS O(peers), not O(peers×tables).
const TxnStreamName = "txn"

// Limits are the per-table stream limits from clustering.leafServer.streams.
type Limits struct {
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64
	// DuplicateWindow is how long the stream remembers a message id
	// (Nats-Msg-Id) to drop a repeated publish; 0 = the default.
	DuplicateWindow time.Duration
}

// DefaultDuplicateWindow is JetStream's default duplicate window.
const DefaultDuplicateWindow = 2 * time.Minute

// Duplicates is the stream's duplicate window: the configured one, else the
// default, shortened to MaxAge when that is shorter (JetStream refuses a
// window longer than the stream's max age).
func (l Limits) Duplicates() time.Duration {
	if l.DuplicateWindow > 0 {
		return l.DuplicateWindow
	}
	if l.MaxAge > 0 && l.MaxAge < DefaultDuplicateWindow {
		return l.MaxAge
	}
	return DefaultDuplicateWindow
}

// TxnStream manages the node's transaction stream.
type TxnStream struct {
	JS     jetstream.JetStream
	NC     *nats.Conn
	Node   string
	Limits Limits
}

// Name is the stream name data services read from.
func (t *TxnStream) Name() string { return TxnStreamName }

// TableFilter is the subject filter selecting every transaction of a table.
func (t *TxnStream) TableFilter(k storage.TableKey) string { return TableSubjects(k) }

func (t *TxnStream) baseConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        TxnStreamName,
		Description: "clusterd table transactions of node " + t.Node,
		Subjects:    []string{OriginSubjects(t.Node)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    1,
		AllowDirect: true,
		MaxAge:      t.Limits.MaxAge,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		MaxMsgsPerSubject: func() int64 {
			if t.Limits.MaxMsgs > 0 {
				return t.Limits.MaxMsgs
			}
			return -1
		}(),
		Duplicates: t.Limits.Duplicates(),
	}
	if t.Limits.MaxBytes > 0 {
		cfg.MaxBytes = t.Limits.MaxBytes
	}
	return cfg
}

// Ensure creates the stream, or corrects its settings (keeping its sources),
// and returns its current info.
func (t *TxnStream) Ensure(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := t.JS.Stream(ctx, TxnStreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = t.JS.CreateStream(ctx, t.baseConfig())
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", TxnStreamName, err)
		}
		return s.CachedInfo(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", TxnStreamName, err)
	}
	info := s.CachedInfo()
	want := t.baseConfig()
	have := info.Config
	if strings.Join(have.Subjects, ",") != strings.Join(want.Subjects, ",") || have.MaxAge != want.MaxAge ||
		have.MaxBytes != want.MaxBytes || have.MaxMsgsPerSubject != want.MaxMsgsPerSubject || have.Duplicates != want.Duplicates ||
		!have.AllowDirect {
		want.Sources = have.Sources
		s, err = t.JS.UpdateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("update stream %s settings: %w", TxnStreamName, err)
		}
		info = s.CachedInfo()
	}
	return info, nil
}

// Info returns the stream's current info.
func (t *TxnStream) Info(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := t.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// LastSeq is the stream's last sequence (0 when it holds nothing), read with
// a direct get of its last message: a stream info would encode and decode
// the whole configuration (every source and filter) for one number.
func (t *TxnStream) LastSeq(ctx context.Context) (uint64, error) {
	m, err := t.directGet(ctx, "", []byte(`{"last_by_subj":">"}`))
	switch {
	case errors.Is(err, nats.ErrNoResponders), err == nil && m == nil:
		return 0, nil // no stream yet, or nothing in it
	case err != nil:
		return 0, fmt.Errorf("read last sequence: %w", err)
	}
	return strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
}

// directGet sends one direct get to the stream (suffix: "" or "."+subject);
// m is nil when the stream holds no such message. A missing stream is
// nats.ErrNoResponders.
func (t *TxnStream) directGet(ctx context.Context, suffix string, body []byte) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := t.NC.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+TxnStreamName+suffix, body)
	if err != nil {
		return nil, err
	}
	switch status := m.Header.Get("Status"); status {
	case "":
		return m, nil
	case "404", "204":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s %s", status, m.Header.Get("Description"))
	}
}

// SetSources replaces the stream's sources.
func (t *TxnStream) SetSources(ctx context.Context, sources []*jetstream.StreamSource) error {
	cfg := t.baseConfig()
	cfg.Sources = sources
	_, err := t.JS.UpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("update stream sources: %w", err)
	}
	return nil
}

// LastImportedSeq returns the origin stream sequence of the last message of
// subject this stream holds that arrived through a source (0 if none).
//
// It is one direct get: looking the stream up first would cost a stream
// info, whose size grows with the number of sources, on every call.
func (t *TxnStream) LastImportedSeq(ctx context.Context, subject string) (uint64, error) {
	m, err := t.directGet(ctx, "."+subject, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return t.lastImportedSeqByLookup(ctx, subject) // no stream yet, or direct gets off
	case err != nil:
		return 0, fmt.Errorf("read last message of %s: %w", subject, err)
	case m == nil:
		return 0, nil
	}
	return sourceSeq(m.Header.Get("Nats-Stream-Source")), nil
}

func (t *TxnStream) lastImportedSeqByLookup(ctx context.Context, subject string) (uint64, error) {
	s, err := t.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return 0, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return sourceSeq(m.Header.Get("Nats-Stream-Source")), nil
}

// sourceSeq reads the origin sequence from a Nats-Stream-Source header
// ("<stream> <seq> <filters> <dests> <orig>").
func sourceSeq(h string) uint64 {
	f := strings.Fields(h)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n
}

// Purge removes every message of subject.
func (t *TxnStream) Purge(ctx context.Context, opts ...jetstream.StreamPurgeOpt) error {
	s, err := t.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return err
	}
	return s.Purge(ctx, opts...)
}

// TableStats are a table's figures in the stream.
type TableStats struct {
	Messages uint64
	FirstSeq uint64
	LastSeq  uint64
}

// Describe returns the figures of each table (all origins together).
func (t *TxnStream) Describe(ctx context.Context, tables []storage.TableKey) (map[storage.TableKey]TableStats, error) {
	out := make(map[storage.TableKey]TableStats, len(tables))
	if len(tables) == 0 {
		return out, nil
	}
	s, err := t.JS.Stream(ctx, TxnStreamName)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("txn.>"))
	if err != nil {
		return nil, err
	}
	counts := map[storage.TableKey]uint64{}
	for subj, n := range info.State.Subjects {
		if k, _, ok := ParseSubject(subj); ok {
			counts[k] += n
		}
	}
	for _, k := range tables {
		st := TableStats{Messages: counts[k]}
		if st.Messages > 0 {
			if m, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(t.TableFilter(k))); err == nil {
				st.FirstSeq = m.Sequence
			}
			if m, err := s.GetLastMsgForSubject(ctx, t.TableFilter(k)); err == nil {
				st.LastSeq = m.Sequence
			}
		}
		out[k] = st
	}
	return out, nil
}

// PeerSeqAt returns the sequence in peer's transaction stream of the first of
// its own transactions at or after t, or the sequence the next one will get
// when there is none. Sources always start by sequence: nats-server moves a
// source's start time forward to the local stream's last message time when
// the stream already holds messages, which would skip the peer's
// transactions written before our own latest one.
func (t *TxnStream) PeerSeqAt(ctx context.Context, peer string, at time.Time) (uint64, error) {
	api := apiPrefix(peer)
	// Read the peer's last sequence before searching: a transaction written
	// after the search is then still at or after last+1.
	var info struct {
		Error *jetstream.APIError `json:"error"`
		State struct {
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	}
	if err := t.apiRequest(ctx, api+".STREAM.INFO."+TxnStreamName, nil, &info); err != nil {
		return 0, err
	}
	if info.Error != nil {
		if info.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound {
			return 1, nil // the peer has written nothing yet
		}
		return 0, fmt.Errorf("peer %s: %s", peer, info.Error.Description)
	}
	req, _ := json.Marshal(map[string]any{"start_time": at.UTC(), "next_by_subj": OriginSubjects(peer)})
	var got struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Seq  uint64    `json:"seq"`
			Time time.Time `json:"time"`
		} `json:"message"`
	}
	if err := t.apiRequest(ctx, api+".STREAM.MSG.GET."+TxnStreamName, req, &got); err != nil {
		return 0, err
	}
	if got.Error != nil && got.Error.ErrorCode != jetstream.JSErrCodeMessageNotFound {
		return 0, fmt.Errorf("peer %s: %s", peer, got.Error.Description)
	}
	// A start time after the peer's last message makes the server search from
	// the beginning; such an answer predates the start and means "none yet".
	if got.Error == nil && got.Message != nil && !got.Message.Time.Before(at) {
		return got.Message.Seq, nil
	}
	return info.State.LastSeq + 1, nil
}

// PeerNextSeq returns the sequence of peer's first message on subject at or
// after from, or 0 when there is none.
func (t *TxnStream) PeerNextSeq(ctx context.Context, peer, subject string, from uint64) (uint64, error) {
	req, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": subject})
	var got struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	if err := t.apiRequest(ctx, apiPrefix(peer)+".STREAM.MSG.GET."+TxnStreamName, req, &got); err != nil {
		return 0, err
	}
	if got.Error != nil {
		if got.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return 0, nil
		}
		return 0, fmt.Errorf("peer %s: %s", peer, got.Error.Description)
	}
	return got.Message.Seq, nil
}

func (t *TxnStream) apiRequest(ctx context.Context, subject string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := t.NC.RequestWithContext(ctx, subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("peer JetStream not reachable (%s): no responders", subject)
	}
	if err != nil {
		return fmt.Errorf("peer JetStream request %s: %w", subject, err)
	}
	return json.Unmarshal(m.Data, out)
}

// LastImportedSeqs returns, for each subject, the origin sequence of the last
// message this stream holds on it that came through a source (0 if none). It
// asks in batches of up to 1000 subjects (a direct multi-last get) instead of
// once per subject: after a restart every table of a peer needs it at once.
func (t *TxnStream) LastImportedSeqs(ctx context.Context, subjects []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(subjects))
	for start := 0; start < len(subjects); start += 1000 {
		chunk := subjects[start:min(start+1000, len(subjects))]
		if err := t.multiLast(ctx, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *TxnStream) multiLast(ctx context.Context, subjects []string, out map[string]uint64) error {
	req := map[string]any{"multi_last": subjects, "max_bytes": batchMaxBytes}
	err := t.batchGet(ctx, "$JS.API.DIRECT.GET."+TxnStreamName, req, func(m *nats.Msg) {
		out[m.Header.Get("Nats-Subject")] = sourceSeq(m.Header.Get("Nats-Stream-Source"))
	})
	if err != nil {
		return fmt.Errorf("read last imported sequences: %w", err)
	}
	return nil
}

// LastMsg is the last message a stream holds on a subject.
type LastMsg struct {
	Seq  uint64
	Time time.Time
}

// LastMsgs returns, for each subject that has any, this stream's last
// message on it (sequence and time), in batched direct gets of up to 1000
// subjects.
func (t *TxnStream) LastMsgs(ctx context.Context, subjects []string) (map[string]LastMsg, error) {
	out := make(map[string]LastMsg, len(subjects))
	for start := 0; start < len(subjects); start += 1000 {
		req := map[string]any{"multi_last": subjects[start:min(start+1000, len(subjects))], "max_bytes": batchMaxBytes}
		err := t.batchGet(ctx, "$JS.API.DIRECT.GET."+TxnStreamName, req, func(m *nats.Msg) {
			seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			at, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
			out[m.Header.Get("Nats-Subject")] = LastMsg{Seq: seq, Time: at}
		})
		if err != nil {
			return nil, fmt.Errorf("read last messages: %w", err)
		}
	}
	return out, nil
}

// batchMaxBytes is what batched direct gets ask for explicitly: nats-server's
// own default (MAX_PENDING_SIZE, 64 MiB), which it otherwise reads from its
// options without a lock — a data race with any reload (a route change),
// which the race detector caught in a full test run.
const batchMaxBytes = 64 << 20

// Pending counts the messages of subject this node's stream holds from
// stream sequence next on, or, when next is 0, from time since on. It asks
// for one message of a batched direct get, whose Nats-Num-Pending header
// counts the matching messages after it: exact, whatever the stream's size,
// and without creating a consumer.
func (t *TxnStream) Pending(ctx context.Context, subject string, next uint64, since time.Time) (uint64, error) {
	req := map[string]any{"next_by_subj": subject, "batch": 1, "max_bytes": batchMaxBytes}
	if next > 0 {
		req["seq"] = next
	} else {
		req["start_time"] = since.UTC()
	}
	body, _ := json.Marshal(req)
	m, err := t.directGet(ctx, "", body)
	switch {
	case errors.Is(err, nats.ErrNoResponders), err == nil && m == nil:
		return 0, nil // no stream yet, or nothing pending
	case err != nil:
		return 0, fmt.Errorf("count pending %s: %w", subject, err)
	}
	np, err := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count pending %s: no Nats-Num-Pending in the reply (nats-server older than 2.11?)", subject)
	}
	return np + 1, nil
}
