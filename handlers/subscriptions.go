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

// SubscriptionIn is a subscription as a request states it.
type SubscriptionIn struct {
	Database  string `json:"database"`
	Schema    string `json:"schema"`
	Table     string `json:"table"`
	Subscribe bool   `json:"subscribe"`
	Publish   bool   `json:"publish"`
	StartTime string `json:"start_time"`
}

func (s SubscriptionIn) toStorage() storage.Subscription {
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
