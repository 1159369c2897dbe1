package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrTableNotFound is returned (wrapped) when the node does not hold a table:
// create it with CreateTable, or have add_node / update_node create it.
var ErrTableNotFound = errors.New("table not held by the node")

// Transactions writes and reads the table transactions of one node (SPEC §6):
// a write is a JetStream publish to txn.<database>.<table>.<node>, stored by
// that node once acknowledged; reads cover every transaction of the table the
// node holds, its own and those replicated from peers, in the node's stream
// order, with the origin node as the subject's last token.
type Transactions struct {
	c    *Client
	js   jetstream.JetStream
	node string
}

// Transactions returns the transaction helper for the node c's connection
// is attached to (learnt from its JetStream domain, which is the node name).
// A client reads and writes the transactions of its own node only: its NATS
// user reaches no other node's JetStream (docs/security.md), so with WithNode
// naming another node it fails and says so.
func (c *Client) Transactions(ctx context.Context) (*Transactions, error) {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the node's JetStream: %w", err)
	}
	if info.Domain == "" {
		return nil, errors.New("the connected server's JetStream has no domain: connect to a clusterd node's leaf client port")
	}
	if c.node != "" && c.node != info.Domain {
		return nil, fmt.Errorf("the transactions of node %s are written and read on its own leaf client port; this connection is to node %s", c.node, info.Domain)
	}
	return &Transactions{c: c.OnNode(info.Domain), js: js, node: info.Domain}, nil
}

// Node is the node whose transactions t writes and reads.
func (t *Transactions) Node() string { return t.node }

// JetStream is the JetStream context of t's node, for anything beyond this
// helper.
func (t *Transactions) JetStream() jetstream.JetStream { return t.js }

func dbOrDefault(db string) string {
	if db == "" {
		return "data"
	}
	return db
}

// Subject is the subject t's node stores its own transactions of a table on.
// An empty database means "data".
func (t *Transactions) Subject(database, table string) string {
	return "txn." + dbOrDefault(database) + "." + table + "." + t.node
}

// Publish writes one transaction of a table on t's node and returns once the
// node has stored it. Pass jetstream.WithMsgID to make retries idempotent.
// The node must hold the table for peers to replicate it.
func (t *Transactions) Publish(ctx context.Context, database, table string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return t.PublishMsg(ctx, database, table, &nats.Msg{Data: data}, opts...)
}

// PublishMsg is Publish with headers; msg.Subject is set by t.
func (t *Transactions) PublishMsg(ctx context.Context, database, table string, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	msg.Subject = t.Subject(database, table)
	ack, err := t.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// ReadOption narrows what a consumer delivers.
type ReadOption func(*readConfig)

type readConfig struct {
	cfg    jetstream.OrderedConsumerConfig
	origin string
}

// FromSequence starts at stream sequence seq (Transaction.Seq).
func FromSequence(seq uint64) ReadOption {
	return func(r *readConfig) {
		r.cfg.DeliverPolicy, r.cfg.OptStartSeq, r.cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, seq, nil
	}
}

// FromTime starts at the first transaction stored at or after t.
func FromTime(at time.Time) ReadOption {
	return func(r *readConfig) {
		r.cfg.DeliverPolicy, r.cfg.OptStartTime, r.cfg.OptStartSeq = jetstream.DeliverByStartTimePolicy, &at, 0
	}
}

// OnlyNew delivers only transactions stored after Consumer (or Subscribe)
// returns.
func OnlyNew() ReadOption {
	return func(r *readConfig) { r.cfg.DeliverPolicy = jetstream.DeliverNewPolicy }
}

// FromOrigin delivers only the transactions written on node origin.
func FromOrigin(origin string) ReadOption { return func(r *readConfig) { r.origin = origin } }

// Consumer returns an ordered consumer over the table's transactions on t's
// node, at the stream and filter subject describe_all reports, from the first
// one held unless an option says otherwise. Use Fetch, Messages or Consume on
// it, and TransactionOf to read each message. It needs no acknowledgements
// and goes away by itself when unused.
func (t *Transactions) Consumer(ctx context.Context, database, table string, opts ...ReadOption) (jetstream.Consumer, error) {
	db := dbOrDefault(database)
	all, err := t.c.DescribeAll(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := all[db][table]
	if !ok {
		return nil, fmt.Errorf("%s.%s on node %s: %w", db, table, t.node, ErrTableNotFound)
	}
	var rc readConfig
	for _, o := range opts {
		o(&rc)
	}
	filter := d.FilterSubject
	if rc.origin != "" {
		filter = strings.TrimSuffix(filter, "*") + rc.origin
	}
	rc.cfg.FilterSubjects = []string{filter}
	if rc.cfg.DeliverPolicy == jetstream.DeliverNewPolicy {
		// An ordered consumer is only made on its first fetch; pin "new" to
		// now, so what is stored between here and then is not skipped.
		s, err := t.js.Stream(ctx, d.Stream)
		if err != nil {
			return nil, fmt.Errorf("look up stream %s on node %s: %w", d.Stream, t.node, err)
		}
		rc.cfg.DeliverPolicy, rc.cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.CachedInfo().State.LastSeq+1
	}
	cons, err := t.js.OrderedConsumer(ctx, d.Stream, rc.cfg)
	if err != nil {
		return nil, fmt.Errorf("consume %s on node %s: %w", filter, t.node, err)
	}
	return cons, nil
}

// Subscribe calls fn with each transaction of the table on t's node, in
// stream order, until the returned ConsumeContext is stopped. fn runs on one
// goroutine at a time.
func (t *Transactions) Subscribe(ctx context.Context, database, table string, fn func(Transaction), opts ...ReadOption) (jetstream.ConsumeContext, error) {
	cons, err := t.Consumer(ctx, database, table, opts...)
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(m jetstream.Msg) {
		if tx, err := TransactionOf(m); err == nil {
			fn(tx)
		}
	})
}

// Transaction is one stored transaction.
type Transaction struct {
	Database string
	Table    string
	// Origin is the node the transaction was written on.
	Origin string
	// Seq is its sequence in the reading node's stream (FromSequence).
	Seq uint64
	// Time is when the reading node stored it.
	Time   time.Time
	Data   []byte
	Header nats.Header
}

// TransactionOf reads a message delivered by a Consumer.
func TransactionOf(m jetstream.Msg) (Transaction, error) {
	p := strings.Split(m.Subject(), ".")
	if len(p) != 4 || p[0] != "txn" {
		return Transaction{}, fmt.Errorf("%q is not a transaction subject (txn.<database>.<table>.<origin>)", m.Subject())
	}
	md, err := m.Metadata()
	if err != nil {
		return Transaction{}, err
	}
	return Transaction{Database: p[1], Table: p[2], Origin: p[3], Seq: md.Sequence.Stream, Time: md.Timestamp,
		Data: m.Data(), Header: m.Headers()}, nil
}
