package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

func TestFormatUptime(t *testing.T) {
	const day = 24 * time.Hour
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{-time.Second, "0s"},
		{time.Second, "1s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"}, // no trailing space
		{time.Hour, "1h"},
		{time.Hour + 2*time.Second, "1h 2s"},
		{day, "1d"},
		{30*day + time.Hour + 18*time.Minute + 8*time.Second, "30d 1h 18m 8s"},
		{31 * day, "1mo"}, // months kept (HarperDB dropped them)
		{31*day + 5*time.Hour, "1mo 5h"},
		{60 * day, "1mo 29d"},
		{61 * day, "2mo"},
		{91 * day, "2mo 30d"},
		{92 * day, "3mo"},
		{365 * day, "11mo 30d"},
		{366 * day, "1y"},
		{800*day + 3*time.Minute, "2y 2mo 8d 3m"},
	} {
		if got := FormatUptime(c.d); got != c.want {
			t.Errorf("FormatUptime(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestPurgeFilterWithinTable(t *testing.T) {
	dog := storage.TableKey{Database: "data", Table: "dog"}
	for _, c := range []struct {
		filter string
		ok     bool
	}{
		{"txn.data.dog.a", true},
		{"txn.data.dog.*", true},
		{"txn.data.dog.>", true},
		{"txn.data.cat.a", false},
		{"txn.other.dog.a", false},
		{"txn.data.*.a", false},
		{"txn.data.dog", false},
		{"txn.data.dog.a.b", false},
		{"txn.data.dog.", false},
		{"txn.data.dog.a*", false},
		{"txn.>", false},
		{"foo.data.dog.a", false},
	} {
		if got := filterWithin(c.filter, dog); got != c.ok {
			t.Errorf("filterWithin(%q) = %v, want %v", c.filter, got, c.ok)
		}
	}
	for _, c := range []struct {
		filter, subject string
		ok              bool
	}{
		{"txn.data.dog.*", "txn.data.dog.b", true},
		{"txn.data.dog.>", "txn.data.dog.b", true},
		{"txn.data.dog.b", "txn.data.dog.b", true},
		{"txn.data.dog.a", "txn.data.dog.b", false},
	} {
		if got := subjectCovers(c.filter, c.subject); got != c.ok {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", c.filter, c.subject, got, c.ok)
		}
	}
}

// statusOps returns operations over a real store holding data.dog, with
// clustering as given.
func statusOps(t *testing.T, clustering bool) *Ops {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.PutTables([]storage.Table{{TableKey: storage.TableKey{Database: "data", Table: "dog"}}}); err != nil {
		t.Fatal(err)
	}
	return New(Ops{NodeName: "n1", ClusteringEnabled: clustering, Store: st, Bus: events.NewBus()})
}

// refusal runs op and returns its status and message; it fails the test
// when the operation succeeded.
func refusal(t *testing.T, run func(context.Context, events.Caller, []byte) (any, error), body string) (int, string) {
	t.Helper()
	_, err := run(context.Background(), events.Caller{User: "admin", Role: events.SuperUser}, []byte(body))
	if err == nil {
		t.Fatalf("%s: accepted", body)
	}
	var e *events.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: untyped error %v", body, err)
	}
	return e.Status, e.Message
}

func TestPurgeStreamMessages(t *testing.T) {
	on, off := statusOps(t, true), statusOps(t, false)
	before := commits(on)
	for _, c := range []struct {
		body string
		ops  *Ops
		want string
	}{
		{`{}`, on, "'table' is required"},
		{`{"table":""}`, on, "'table' is not allowed to be empty"},
		{`{"table":5}`, on, "'table' must be a string"},
		{`{"table":"d.g"}`, on, "'table' invalid, must not contain ., *, > or whitespace"},
		{`{"table":"dog","database":7}`, on, "'database' must be a string"},
		{`{"table":"dog","schema":""}`, on, "'schema' is not allowed to be empty"},
		{`{"table":"` + strings.Repeat("t", MaxNameLen+1) + `"}`, on, "'table' length must be less than or equal to 250 characters long"},
		{`{"table":"dog","options":"keep"}`, on, "'options' must be of type object"},
		{`{"table":"dog","options":[1]}`, on, "'options' must be of type object"},
		{`{"table":"dog","options":{"keep":-1}}`, on, "'options.keep' must be greater than or equal to 0"},
		{`{"table":"dog","options":{"seq":-5}}`, on, "'options.seq' must be greater than or equal to 0"},
		{`{"table":"dog","options":{"keep":"x"}}`, on, "'options.keep' must be a number"},
		{`{"table":"dog","options":{"seq":true}}`, on, "'options.seq' must be a number"},
		{`{"table":"dog","options":{"keep":1.5}}`, on, "'options.keep' must be an integer"},
		{`{"table":"dog","options":{"filter":3}}`, on, "'options.filter' must be a string"},
		{`{"table":"dog","options":{"filter":""}}`, on, "'options.filter' is not allowed to be empty"},
		{`{"table":"dog","options":{"keep":1,"seq":2}}`, on, "can specify one of keep or seq"},
		{`{"table":"dog","options":{"keep":"1","seq":"2"}}`, on, "can specify one of keep or seq"},
		{`{"options":{"keep":-1,"seq":2}}`, on, "'table' is required. 'options.keep' must be greater than or equal to 0. can specify one of keep or seq"},
		{`{"table":"dog","options":{"filter":"txn.data.cat.n1"}}`, on, "'options.filter' must be a subject of table 'data.dog': txn.data.dog.<node> with the origin node's name (or *) as last token, got 'txn.data.cat.n1'"},
		{`{"table":"cat"}`, on, "Table 'cat' does not exist"},
		{`{"table":"dog","database":"dev"}`, on, "Database 'dev' does not exist. Table 'dog' does not exist"},
		{`{"table":"dog","schema":"dev"}`, on, "Database 'dev' does not exist. Table 'dog' does not exist"},
		// Validation comes first, then the clustering check.
		{`{}`, off, "'table' is required"},
		{`{"table":"dog","options":{"keep":1,"seq":2}}`, off, "can specify one of keep or seq"},
		{`{"table":"dog"}`, off, "Clustering must be enabled to perform this operation."},
		{`{"table":"nope","database":"nope"}`, off, "Clustering must be enabled to perform this operation."},
	} {
		status, msg := refusal(t, c.ops.run("purge_stream"), c.body)
		if status != 400 || msg != c.want {
			t.Errorf("%s:\n got %d %q\nwant 400 %q", c.body, status, msg, c.want)
		}
	}
	if commits(on) != before {
		t.Errorf("refused purges wrote to the store")
	}
}

func TestClusterNetworkMessages(t *testing.T) {
	on, off := statusOps(t, true), statusOps(t, false)
	for _, c := range []struct {
		body string
		ops  *Ops
		want string
	}{
		{`{"timeout":0}`, on, "'timeout' must be greater than or equal to 1"},
		{`{"timeout":-3}`, on, "'timeout' must be greater than or equal to 1"},
		{`{"timeout":"soon"}`, on, "'timeout' must be a number"},
		{`{"connected_nodes":"yes"}`, on, "'connected_nodes' must be a boolean"},
		{`{"routes":1}`, on, "'routes' must be a boolean"},
		{`{"timeout":0,"routes":1,"connected_nodes":"no"}`, on, "'timeout' must be greater than or equal to 1. 'connected_nodes' must be a boolean. 'routes' must be a boolean"},
		{`[]`, on, "Invalid JSON body: expected a JSON object, got an array"},
		// Clustering is checked before validation.
		{`{"timeout":0}`, off, "Clustering must be enabled to perform this operation."},
		{`{}`, off, "Clustering must be enabled to perform this operation."},
	} {
		status, msg := refusal(t, c.ops.run("cluster_network"), c.body)
		if status != 400 || msg != c.want {
			t.Errorf("%s:\n got %d %q\nwant 400 %q", c.body, status, msg, c.want)
		}
	}
}

func TestClusterStatusMessages(t *testing.T) {
	on := statusOps(t, true)
	status, msg := refusal(t, on.run("cluster_status"), `"x"`)
	if status != 400 || msg != "Invalid JSON body: expected a JSON object, got a string" {
		t.Errorf("got %d %q", status, msg)
	}
}
