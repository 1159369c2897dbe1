package membership

import (
	"testing"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

const testPassword = "cluster-secret"

// startNATS starts a real nats-server on an ephemeral port.
func startNATS(t testing.TB) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv
}

func connect(t testing.TB, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// member is one node's protocol over a real store, calling peers through
// srv. serve filters the calls it answers (nil: all).
type member struct {
	*Protocol
	store *storage.Store
}

func newMember(t testing.TB, srv *server.Server, name string, serve func(map[string]events.PeerHandler)) *member {
	t.Helper()
	st, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := New(Config{Self: name, Enabled: true, Store: st,
		Peers: events.NewPeerClient(connect(t, srv), name, testPassword, 2*time.Second)})
	t.Cleanup(p.Stop)
	h := p.Handlers()
	if serve != nil {
		serve(h)
	}
	ps, err := events.StartPeerServer(connect(t, srv), name, testPassword, h, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Stop)
	return &member{Protocol: p, store: st}
}

func (m *member) createTables(t testing.TB, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		if _, err := m.store.PutTables([]storage.Table{{TableKey: storage.TableKey{Database: "data", Table: tb}, Created: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
}

func sub(table string, subscribe, publish bool) storage.Subscription {
	return storage.Subscription{Database: "data", Table: table, Subscribe: subscribe, Publish: publish}
}

// mirrored says whether a's record of b and b's of a are mirror images
// (both absent counts).
func mirrored(a, b *member) (bool, string) {
	ra, okA, _ := a.store.Node(b.cfg.Self)
	rb, okB, _ := b.store.Node(a.cfg.Self)
	if okA != okB {
		return false, "one side has no record"
	}
	if len(ra.Subscriptions) != len(rb.Subscriptions) {
		return false, "different numbers of subscriptions"
	}
	for _, s := range ra.Subscriptions {
		i := rb.Find(s.Key())
		if i < 0 {
			return false, "missing " + s.Key().Table
		}
		o := rb.Subscriptions[i]
		if o.Subscribe != s.Publish || o.Publish != s.Subscribe {
			return false, "not mirror images for " + s.Key().Table
		}
	}
	return true, ""
}
