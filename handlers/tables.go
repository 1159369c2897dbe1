package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

var createTableSchema = Schema{
	{Name: "database", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "schema", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "table", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: nameToken},
}

// TableRequest names a table (create_table; purge_stream embeds it).
type TableRequest struct {
	Database string `json:"database"`
	Schema   string `json:"schema"`
	Table    string `json:"table"`
}

func (r TableRequest) key() storage.TableKey {
	db := r.Database
	if db == "" {
		db = r.Schema
	}
	if db == "" {
		db = "data"
	}
	return storage.TableKey{Database: db, Table: r.Table}
}

// CreateTable makes this node hold a table (idempotent).
func (o *Ops) CreateTable(ctx context.Context, _ events.Caller, req TableRequest) (MessageReply, error) {
	k := req.key()
	_, err := o.Store.PutTables([]storage.Table{{TableKey: k, Created: time.Now().UTC()}})
	if err != nil {
		return MessageReply{}, fmt.Errorf("record table %s: %w", k, err)
	}
	return MessageReply{Message: fmt.Sprintf("table '%s' successfully created.", k)}, nil
}

// TableDescription says where a table's transactions are and how many.
type TableDescription struct {
	Stream        string `json:"stream"`
	FilterSubject string `json:"filter_subject"`
	Messages      uint64 `json:"messages"`
	FirstSeq      uint64 `json:"first_seq"`
	LastSeq       uint64 `json:"last_seq"`
	// Lost counts transactions lost from the stream and not fetched again
	// (damaged JetStream files; see topology.TxnLoss).
	Lost uint64 `json:"lost,omitempty"`
	// Error says why the table is not served as it should be (a name
	// stored before names were checked, lost transactions).
	Error string `json:"error,omitempty"`
}

// DescribeAllReply is describe_all's reply: database -> table -> description.
type DescribeAllReply map[string]map[string]TableDescription

// DescribeAll lists this node's tables by database with their stream figures.
func (o *Ops) DescribeAll(ctx context.Context, _ events.Caller, _ NoRequest) (DescribeAllReply, error) {
	tables, err := o.Store.Tables()
	if err != nil {
		return nil, fmt.Errorf("load tables: %w", err)
	}
	keys := make([]storage.TableKey, len(tables))
	for i, t := range tables {
		keys[i] = t.TableKey
	}
	stats, err := o.Txn.Describe(ctx, keys)
	if err != nil {
		return nil, events.Wrap(503, err, "Transaction store is not available yet: "+err.Error())
	}
	out := DescribeAllReply{}
	for _, k := range keys {
		if out[k.Database] == nil {
			out[k.Database] = map[string]TableDescription{}
		}
		st := stats[k]
		out[k.Database][k.Table] = TableDescription{
			Stream: o.Txn.Name(), FilterSubject: o.Txn.TableFilter(k),
			Messages: st.Messages, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq,
		}
		if p := storage.TableNameProblem(k); p != "" {
			d := out[k.Database][k.Table]
			d.Error = "not replicated: " + p + " (stored before names were checked)"
			out[k.Database][k.Table] = d
		}
	}
	for _, r := range o.Loss.Records() {
		d, ok := out[r.Table.Database][r.Table.Table]
		if !ok || r.Recovered {
			continue
		}
		d.Lost += r.Lost()
		d.Error = strings.TrimPrefix(d.Error+"; "+r.Problem(), "; ")
		out[r.Table.Database][r.Table.Table] = d
	}
	return out, nil
}
