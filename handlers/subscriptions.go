package handlers

import (
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
)

// ReservedDatabase is used by clusterd for source-group markers in the
// transaction stream, so no table may live in it.
const ReservedDatabase = "_clusterd"

// nameToken applies storage.NameProblem, the one rule for names that become
// subject tokens, to a database or table name. Dots, wildcards and
// whitespace keep the message clients already know.
func nameToken(label string, v any) []string {
	s, _ := v.(string)
	if s == "" || len(s) > MaxNameLen { // reported by the schema
		return nil
	}
	p := storage.NameProblem(s)
	switch {
	case p == "":
		return nil
	case strings.HasPrefix(p, "must not contain ., * or >"), strings.HasPrefix(p, "must not contain whitespace"):
		return []string{label + " invalid, must not contain ., *, > or whitespace"}
	}
	return []string{label + " invalid, " + p}
}

func databaseToken(label string, v any) []string {
	if p := nameToken(label, v); p != nil {
		return p
	}
	if s, _ := v.(string); s == ReservedDatabase {
		return []string{label + " invalid, '" + ReservedDatabase + "' is reserved"}
	}
	return nil
}

// MaxNameLen bounds database, table and node names: they become NATS
// subject tokens and storage keys.
const MaxNameLen = storage.MaxNameLen

var subscriptionSchema = Schema{
	{Name: "database", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "schema", Kind: kString, NonEmpty: true, MaxLen: MaxNameLen, Check: databaseToken},
	{Name: "table", Kind: kString, Required: true, NonEmpty: true, MaxLen: MaxNameLen, Check: nameToken},
	{Name: "subscribe", Kind: kBool, Required: true},
	{Name: "publish", Kind: kBool, Required: true},
	{Name: "start_time", Kind: kString, Date: true},
}

// subscriptionIn is a subscription as a request states it.
type subscriptionIn struct {
	Database  string `json:"database"`
	Schema    string `json:"schema"`
	Table     string `json:"table"`
	Subscribe bool   `json:"subscribe"`
	Publish   bool   `json:"publish"`
	StartTime string `json:"start_time"`
}

func (s subscriptionIn) toStorage() storage.Subscription {
	db := s.Database
	if db == "" {
		db = s.Schema
	}
	if db == "" {
		db = "data"
	}
	out := storage.Subscription{Database: db, Table: s.Table, Subscribe: s.Subscribe, Publish: s.Publish}
	if s.StartTime != "" {
		t, _ := parseISODate(s.StartTime) // validated already
		out.StartTime = &t
	}
	return out
}

// SubscriptionOut is a subscription in replies (schema kept for HarperDB clients).
type SubscriptionOut struct {
	Database  string     `json:"database"`
	Schema    string     `json:"schema"`
	Table     string     `json:"table"`
	Subscribe bool       `json:"subscribe"`
	Publish   bool       `json:"publish"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

func subscriptionOut(s storage.Subscription) SubscriptionOut {
	return SubscriptionOut{Database: s.Database, Schema: s.Database, Table: s.Table, Subscribe: s.Subscribe, Publish: s.Publish, StartTime: s.StartTime}
}

func outs(subs []storage.Subscription) []SubscriptionOut {
	out := make([]SubscriptionOut, 0, len(subs))
	for _, s := range subs {
		out = append(out, subscriptionOut(s))
	}
	return out
}

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
