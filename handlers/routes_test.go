package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/membership"
	"github.com/clusterd/clusterd/storage"
)

// newOps returns route operations over a real store in a temp dir.
func newOps(t testing.TB) *Ops {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	bus := events.NewBus()
	st.OnChange(bus.Announce)
	members := membership.New(membership.Config{Self: "n1", Enabled: true, Store: st})
	t.Cleanup(members.Stop)
	return New(Ops{NodeName: "n1", ClusteringEnabled: true, Store: st, Bus: bus, Members: members})
}

// commits counts the store's commits (a test's Ops has a *storage.Store).
func commits(o *Ops) int64 { return o.Store.(*storage.Store).Commits() }

type runner func(context.Context, events.Caller, []byte) (any, error)

// run is operation name as the router runs it: body in, reply out.
func (o *Ops) run(name string) runner {
	for _, op := range o.Operations() {
		if op.Name == name {
			return op.Run
		}
	}
	panic("no operation " + name)
}

// reject runs op on body and returns the 400 message, failing unless the
// request was refused with 400 without writing anything.
func reject(t *testing.T, o *Ops, run runner, body string) string {
	t.Helper()
	before := commits(o)
	got, err := run(context.Background(), events.Caller{User: "admin", Role: events.SuperUser}, []byte(body))
	if err == nil {
		t.Fatalf("body %s: accepted, want a 400; reply %+v", body, got)
	}
	var e *events.Error
	if !errors.As(err, &e) {
		t.Fatalf("body %s: error %v is not an *events.Error (would become a 500)", body, err)
	}
	if e.Status != 400 {
		t.Fatalf("body %s: status %d (%s), want 400", body, e.Status, e.Message)
	}
	if n := commits(o); n != before {
		t.Fatalf("body %s: rejected request committed %d store writes", body, n-before)
	}
	return e.Message
}

func accept(t *testing.T, run runner, body string) string {
	t.Helper()
	got, err := run(context.Background(), events.Caller{User: "admin", Role: events.SuperUser}, []byte(body))
	if err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSetRoutesValidationMessages(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"empty body", ``, "'server' is required. 'routes' is required"},
		{"empty object", `{}`, "'server' is required. 'routes' is required"},
		{"nulls are missing", `{"server":null,"routes":null}`, "'server' is required. 'routes' is required"},
		{"server missing", `{"routes":[]}`, "'server' is required"},
		{"routes missing", `{"server":"hub"}`, "'routes' is required"},
		{"server not a string", `{"server":1,"routes":[]}`, "'server' must be a string"},
		{"server empty", `{"server":"","routes":[]}`, "'server' is not allowed to be empty"},
		{"server unknown", `{"server":"core","routes":[]}`, "'server' must be one of [hub, leaf]"},
		{"server wrong case", `{"server":"HUB","routes":[]}`, "'server' must be one of [hub, leaf]"},
		{"routes not an array", `{"server":"hub","routes":"h:1"}`, "'routes' must be an array"},
		{"routes an object", `{"server":"hub","routes":{"host":"h","port":1}}`, "'routes' must be an array"},
		{"route not an object", `{"server":"hub","routes":["h:1"]}`, "'routes[0]' must be of type object"},
		{"route empty object", `{"server":"hub","routes":[{}]}`, "'routes[0].host' is required. 'routes[0].port' is required"},
		{"host missing", `{"server":"hub","routes":[{"port":1}]}`, "'routes[0].host' is required"},
		{"port missing", `{"server":"hub","routes":[{"host":"h"}]}`, "'routes[0].port' is required"},
		{"host not a string", `{"server":"hub","routes":[{"host":7,"port":1}]}`, "'routes[0].host' must be a string"},
		{"host empty", `{"server":"hub","routes":[{"host":"","port":1}]}`, "'routes[0].host' is not allowed to be empty"},
		{"port a word", `{"server":"hub","routes":[{"host":"h","port":"abc"}]}`, "'routes[0].port' must be a number"},
		{"port empty string", `{"server":"hub","routes":[{"host":"h","port":""}]}`, "'routes[0].port' must be a number"},
		{"port boolean", `{"server":"hub","routes":[{"host":"h","port":true}]}`, "'routes[0].port' must be a number"},
		{"port object", `{"server":"hub","routes":[{"host":"h","port":{}}]}`, "'routes[0].port' must be a number"},
		{"port negative", `{"server":"hub","routes":[{"host":"h","port":-1}]}`, "'routes[0].port' must be greater than or equal to 0"},
		{"port negative string", `{"server":"hub","routes":[{"host":"h","port":"-5"}]}`, "'routes[0].port' must be greater than or equal to 0"},
		{"port fraction", `{"server":"hub","routes":[{"host":"h","port":9932.5}]}`, "'routes[0].port' must be an integer"},
		{"port too large", `{"server":"hub","routes":[{"host":"h","port":65536}]}`, "'routes[0].port' must be less than or equal to 65535"},
		{"second route bad", `{"server":"leaf","routes":[{"host":"h","port":1},{"host":"h","port":"x"}]}`, "'routes[1].port' must be a number"},
		{
			"every problem joined",
			`{"server":"mesh","routes":[{"host":"","port":-1},5,{"port":"p"}]}`,
			"'server' must be one of [hub, leaf]. 'routes[0].host' is not allowed to be empty. " +
				"'routes[0].port' must be greater than or equal to 0. 'routes[1]' must be of type object. " +
				"'routes[2].host' is required. 'routes[2].port' must be a number",
		},
	}
	o := newOps(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reject(t, o, o.run("cluster_set_routes"), c.body); got != c.want {
				t.Fatalf("message\n got: %s\nwant: %s", got, c.want)
			}
		})
	}
	if r, _ := o.Store.Routes(); len(r.Hub)+len(r.Leaf) != 0 {
		t.Fatalf("rejected requests left routes behind: %+v", r)
	}
}

func TestDeleteRoutesValidationMessages(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"empty object", `{}`, "'routes' is required"},
		{"routes not an array", `{"routes":7}`, "'routes' must be an array"},
		{"route not an object", `{"routes":[null]}`, "'routes[0]' must be of type object"},
		{"host and port missing", `{"routes":[{}]}`, "'routes[0].host' is required. 'routes[0].port' is required"},
		{"host empty", `{"routes":[{"host":"","port":1}]}`, "'routes[0].host' is not allowed to be empty"},
		{"port a word", `{"routes":[{"host":"h","port":"nine"}]}`, "'routes[0].port' must be a number"},
		{"port negative", `{"routes":[{"host":"h","port":-3}]}`, "'routes[0].port' must be greater than or equal to 0"},
		{"port fraction", `{"routes":[{"host":"h","port":"1.5"}]}`, "'routes[0].port' must be an integer"},
	}
	o := newOps(t)
	accept(t, o.run("cluster_set_routes"), `{"server":"hub","routes":[{"host":"h","port":1}]}`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := reject(t, o, o.run("cluster_delete_routes"), c.body); got != c.want {
				t.Fatalf("message\n got: %s\nwant: %s", got, c.want)
			}
		})
	}
	if got := accept(t, o.run("cluster_get_routes"), `{}`); got != `{"hub":[{"host":"h","port":1}],"leaf":[]}` {
		t.Fatalf("rejected deletes changed routes: %s", got)
	}
}

func TestBodyThatIsNotAJSONObject(t *testing.T) {
	huge := `{"server":"hub","routes":[],"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	cases := []struct {
		name, body, want string
	}{
		{"garbage", `not json`, "Invalid JSON body: "},
		{"truncated", `{"server":"hub"`, "Invalid JSON body: "},
		{"array", `[{"server":"hub","routes":[]}]`, "Invalid JSON body: expected a JSON object, got an array"},
		{"string", `"hub"`, "Invalid JSON body: expected a JSON object, got a string"},
		{"number", `42`, "Invalid JSON body: expected a JSON object, got a number"},
		{"null", `null`, "Invalid JSON body: expected a JSON object, got null"},
		{"two objects", `{} {}`, "Invalid JSON body: unexpected data after the JSON object"},
		{"huge", huge, fmt.Sprintf("Invalid JSON body: body is %d bytes, larger than the 1048576 byte limit", len(huge))},
	}
	o := newOps(t)
	ops := map[string]runner{"cluster_set_routes": o.run("cluster_set_routes"), "cluster_get_routes": o.run("cluster_get_routes"), "cluster_delete_routes": o.run("cluster_delete_routes")}
	for _, c := range cases {
		for name, run := range ops {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				got := reject(t, o, run, c.body)
				if !strings.HasPrefix(got, c.want) || (strings.HasSuffix(c.want, " ") && len(got) <= len(c.want)) {
					t.Fatalf("message %q, want it to start with %q and say why", got, c.want)
				}
				if !strings.HasSuffix(c.want, " ") && got != c.want {
					t.Fatalf("message\n got: %s\nwant: %s", got, c.want)
				}
			})
		}
	}
}

func TestSetRoutesUpsertsAndCoercesNumericStringPorts(t *testing.T) {
	o := newOps(t)
	changes := o.Bus.Subscribe(events.RoutesChanged)

	got := accept(t, o.run("cluster_set_routes"), `{"operation":"cluster_set_routes","server":"hub","routes":[{"host":"10.0.0.1","port":"9932"},{"host":"10.0.0.2","port":9932,"extra":"ignored"}],"unknown":true}`)
	want := `{"message":"cluster routes successfully set","set":[{"host":"10.0.0.1","port":9932},{"host":"10.0.0.2","port":9932}],"skipped":[]}`
	if got != want {
		t.Fatalf("set hub\n got: %s\nwant: %s", got, want)
	}
	select {
	case <-changes:
	default:
		t.Fatal("a change was not announced to the workers")
	}

	// Already present (as hub) → skipped even when asked for the leaf list,
	// also when the port is given as a string; a repeat inside one request
	// is skipped too.
	before := commits(o)
	got = accept(t, o.run("cluster_set_routes"), `{"server":"leaf","routes":[{"host":"10.0.0.1","port":9932},{"host":"10.0.0.3","port":"9931"},{"host":"10.0.0.3","port":9931},{"host":"10.0.0.2","port":"9932"}]}`)
	want = `{"message":"cluster routes successfully set","set":[{"host":"10.0.0.3","port":9931}],"skipped":[{"host":"10.0.0.1","port":9932},{"host":"10.0.0.3","port":9931},{"host":"10.0.0.2","port":9932}]}`
	if got != want {
		t.Fatalf("set leaf\n got: %s\nwant: %s", got, want)
	}
	if commits(o) != before+1 {
		t.Fatalf("one accepted change took %d commits", commits(o)-before)
	}
	<-changes

	// Nothing new: no write, no announcement.
	before = commits(o)
	got = accept(t, o.run("cluster_set_routes"), `{"server":"hub","routes":[{"host":"10.0.0.3","port":9931}]}`)
	want = `{"message":"cluster routes successfully set","set":[],"skipped":[{"host":"10.0.0.3","port":9931}]}`
	if got != want {
		t.Fatalf("set again\n got: %s\nwant: %s", got, want)
	}
	if commits(o) != before {
		t.Fatal("a request that changed nothing wrote to the store")
	}
	select {
	case <-changes:
		t.Fatal("a request that changed nothing announced a change")
	default:
	}

	got = accept(t, o.run("cluster_get_routes"), ``)
	want = `{"hub":[{"host":"10.0.0.1","port":9932},{"host":"10.0.0.2","port":9932}],"leaf":[{"host":"10.0.0.3","port":9931}]}`
	if got != want {
		t.Fatalf("get\n got: %s\nwant: %s", got, want)
	}
}

func TestDeleteRoutesFromHubElseLeafWithNumericStrings(t *testing.T) {
	o := newOps(t)
	accept(t, o.run("cluster_set_routes"), `{"server":"hub","routes":[{"host":"a","port":1},{"host":"b","port":2}]}`)
	accept(t, o.run("cluster_set_routes"), `{"server":"leaf","routes":[{"host":"c","port":3}]}`)

	got := accept(t, o.run("cluster_delete_routes"), `{"routes":[{"host":"a","port":"1"},{"host":"c","port":"3"},{"host":"a","port":1},{"host":"z","port":9}]}`)
	want := `{"message":"cluster routes successfully deleted","deleted":[{"host":"a","port":1},{"host":"c","port":3}],"skipped":[{"host":"a","port":1},{"host":"z","port":9}]}`
	if got != want {
		t.Fatalf("delete\n got: %s\nwant: %s", got, want)
	}
	if got := accept(t, o.run("cluster_get_routes"), `{}`); got != `{"hub":[{"host":"b","port":2}],"leaf":[]}` {
		t.Fatalf("after delete: %s", got)
	}

	before := commits(o)
	got = accept(t, o.run("cluster_delete_routes"), `{"routes":[]}`)
	if got != `{"message":"cluster routes successfully deleted","deleted":[],"skipped":[]}` {
		t.Fatalf("empty delete: %s", got)
	}
	if commits(o) != before {
		t.Fatal("a delete that removed nothing wrote to the store")
	}
}

func TestGetRoutesEmptyListsAreArrays(t *testing.T) {
	o := newOps(t)
	var m map[string]any
	if err := json.Unmarshal([]byte(accept(t, o.run("cluster_get_routes"), `{}`)), &m); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"hub": []any{}, "leaf": []any{}}; !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
}
