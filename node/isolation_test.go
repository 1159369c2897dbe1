package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/topology"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The isolation tests attack a two-node mesh (a and b, table dev.dog
// replicated both ways) with only what clusterd hands its users: the
// operator's credentials and a service user's. Each attack must achieve
// nothing: no token reaches the attacker, no inter-node call lands, both
// nodes' data is intact and replication still flows both ways.

const (
	svcUser = "orders"
	svcPass = "orders-secret"
	// spyUser is another service of the same node, listening in.
	spyUser = "spy"
	spyPass = "spy-secret"
)

type isoPair struct {
	a, b *node.Node
	// before: each node's stream state and config after the set-up writes.
	before    map[string]jetstream.StreamState
	beforeCfg map[string]jetstream.StreamConfig
}

func isolatedPair(t *testing.T) *isoPair {
	t.Helper()
	var nodes []*node.Node
	for _, name := range []string{"a", "b"} {
		cfg := nodetest.Config(t, name)
		cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: svcUser, Password: svcPass}, {User: spyUser, Password: spyPass}}
		nodes = append(nodes, nodetest.Start(t, cfg))
	}
	a, b := nodes[0], nodes[1]
	if r := nodetest.Op(t, b, "cluster_set_routes", map[string]any{"server": "hub", "routes": []any{nodetest.ClusterRoute(a)}}); r.Status != 200 {
		t.Fatalf("set routes: %s", r.Body)
	}
	nodetest.Eventually(t, 10*time.Second, "a and b meshed", func() bool { return meshed(a, b) && meshed(b, a) })
	for _, n := range nodes {
		op(t, n, "create_table", map[string]any{"database": "dev", "table": "dog"}, 200)
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{
		map[string]any{"database": "dev", "table": "dog", "subscribe": true, "publish": true}}}, 200)
	p := &isoPair{a: a, b: b}
	p.replicates(t, "setup")
	p.before = map[string]jetstream.StreamState{"a": p.state(t, a), "b": p.state(t, b)}
	p.beforeCfg = map[string]jetstream.StreamConfig{"a": p.config(t, a), "b": p.config(t, b)}
	return p
}

// state is n's transaction stream state, read as clusterd itself.
func (p *isoPair) state(t *testing.T, n *node.Node) jetstream.StreamState {
	t.Helper()
	js, err := jetstream.New(nodetest.Internal(t, n))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), "txn")
	if err != nil {
		t.Fatalf("%s: the transaction stream: %v", n.Name(), err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// config is n's transaction stream config, read as clusterd itself.
func (p *isoPair) config(t *testing.T, n *node.Node) jetstream.StreamConfig {
	t.Helper()
	js, _ := jetstream.New(nodetest.Internal(t, n))
	s, err := js.Stream(context.Background(), "txn")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

// streams lists n's streams, read as clusterd itself: only txn may exist.
func streams(t *testing.T, n *node.Node) []string {
	t.Helper()
	js, err := jetstream.New(nodetest.Internal(t, n))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	names := js.StreamNames(context.Background())
	for name := range names.Name() {
		out = append(out, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// replicates writes one transaction on each node as the service user and
// waits for each to reach the other node.
func (p *isoPair) replicates(t *testing.T, tag string) {
	t.Helper()
	for _, pair := range [][2]*node.Node{{p.a, p.b}, {p.b, p.a}} {
		from, to := pair[0], pair[1]
		subject := "txn.dev.dog." + from.Name()
		payload := tag + "-from-" + from.Name()
		js, err := jetstream.New(connectAs(t, from, svcUser, svcPass))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(context.Background(), subject, []byte(payload)); err != nil {
			t.Fatalf("the service's own write on %s: %v", from.Name(), err)
		}
		nodetest.Eventually(t, 20*time.Second, payload+" replicated to "+to.Name(), func() bool {
			return slices.Contains(internalPayloads(t, to, subject), payload)
		})
	}
}

// intact checks that the attacks changed nothing: only txn exists on both
// nodes, each still holds every message it held (no purge, delete or
// update), its config is clusterd's, and replication still flows.
func (p *isoPair) intact(t *testing.T) {
	t.Helper()
	for _, n := range []*node.Node{p.a, p.b} {
		if got := streams(t, n); !slices.Equal(got, []string{"txn"}) {
			t.Errorf("%s holds streams %v, want only txn", n.Name(), got)
		}
		st, was := p.state(t, n), p.before[n.Name()]
		if st.FirstSeq != was.FirstSeq || st.LastSeq < was.LastSeq || st.Msgs < was.Msgs || st.NumDeleted != 0 {
			t.Errorf("%s's stream changed: was first %d last %d msgs %d, now first %d last %d msgs %d deleted %d",
				n.Name(), was.FirstSeq, was.LastSeq, was.Msgs, st.FirstSeq, st.LastSeq, st.Msgs, st.NumDeleted)
		}
		cfg, wasCfg := p.config(t, n), p.beforeCfg[n.Name()]
		if !slices.Equal(cfg.Subjects, wasCfg.Subjects) || cfg.RePublish != nil || cfg.Mirror != nil || cfg.MaxMsgs != wasCfg.MaxMsgs || cfg.MaxBytes != wasCfg.MaxBytes {
			t.Errorf("%s's stream config changed: subjects %v republish %+v mirror %+v max msgs %d bytes %d",
				n.Name(), cfg.Subjects, cfg.RePublish, cfg.Mirror, cfg.MaxMsgs, cfg.MaxBytes)
		}
	}
	p.replicates(t, "after")
}

// internalPayloads reads n's stored payloads on subject as clusterd itself.
func internalPayloads(t *testing.T, n *node.Node, subject string) []string {
	t.Helper()
	return streamPayloads(t, nodetest.Internal(t, n), subject)
}

func connectAs(t *testing.T, n *node.Node, user, pass string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.LeafURL(), append([]nats.Option{nats.UserInfo(user, pass)}, opts...)...)
	if err != nil {
		t.Fatalf("connect to %s as %s: %v", n.Name(), user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// attackers are the credentials clusterd hands out on node a.
func (p *isoPair) attackers(t *testing.T) map[string]*nats.Conn {
	return map[string]*nats.Conn{
		"operator": connectAs(t, p.a, p.a.OperatorUser(), p.a.OperatorPassword()),
		"service":  connectAs(t, p.a, svcUser, svcPass),
	}
}

// jsFrom is the JetStream API of nc under each prefix an attacker could use.
func jsFrom(t *testing.T, nc *nats.Conn) map[string]jetstream.JetStream {
	t.Helper()
	out := map[string]jetstream.JetStream{}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	out["$JS.API"] = js
	for _, domain := range []string{"a", "b"} {
		js, err := jetstream.NewWithDomain(nc, domain)
		if err != nil {
			t.Fatal(err)
		}
		out["$JS."+domain+".API"] = js
	}
	return out
}

func shortCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 3*time.Second)
}

// Streams that would capture operation requests (with their tokens) or
// inter-node calls, mirror or source clusterd's stream, republish into an
// inter-node subject, or fill the disk: none can be created, on any domain.
func TestIsolationNoStreamCanBeCreated(t *testing.T) {
	p := isolatedPair(t)
	spies := []jetstream.StreamConfig{
		{Name: "spy", Subjects: []string{"ops.>", "_clusterd.>"}},
		{Name: "spyall", Subjects: []string{">"}},
		{Name: "spyinbox", Subjects: []string{"_INBOX.>", "_R_.>"}},
		{Name: "mirror", Mirror: &jetstream.StreamSource{Name: "txn"}},
		{Name: "source", Sources: []*jetstream.StreamSource{{Name: "txn", Domain: "b"}}},
		{Name: "republish", Subjects: []string{"evil.>"}, RePublish: &jetstream.RePublish{Source: ">", Destination: "_clusterd.node.b.node_remove"}},
		{Name: "huge", Subjects: []string{"big.>"}, MaxBytes: 1 << 30},
	}
	for who, nc := range p.attackers(t) {
		for prefix, js := range jsFrom(t, nc) {
			for _, cfg := range spies {
				ctx, cancel := shortCtx()
				if _, err := js.CreateStream(ctx, cfg); err == nil {
					t.Errorf("%s created stream %s through %s", who, cfg.Name, prefix)
				}
				cancel()
			}
		}
	}
	// What a spy stream would have stored: an operation and an inter-node
	// call. Nothing holds them but clusterd.
	op(t, p.a, "cluster_status", map[string]any{}, 200)
	p.intact(t)
}

// Purge, delete, update and message delete on clusterd's stream, through
// every prefix, change nothing on either node.
func TestIsolationTransactionStreamCannotBeChanged(t *testing.T) {
	p := isolatedPair(t)
	for who, nc := range p.attackers(t) {
		for _, domain := range []string{"", "a.", "b."} {
			api := "$JS." + domain + "API."
			if domain == "" {
				api = "$JS.API."
			}
			for _, req := range []struct{ subject, body string }{
				{api + "STREAM.PURGE.txn", `{}`},
				{api + "STREAM.PURGE.txn", `{"filter":"txn.dev.dog.b","keep":0}`},
				{api + "STREAM.DELETE.txn", ``},
				{api + "STREAM.UPDATE.txn", `{"name":"txn","subjects":["txn.>","ops.>"],"max_msgs":1}`},
				{api + "STREAM.MSG.DELETE.txn", `{"seq":1}`},
				{api + "STREAM.MSG.DELETE.txn", `{"seq":1,"no_erase":true}`},
				{api + "STREAM.CREATE.txn", `{"name":"txn","subjects":["txn.>"]}`},
			} {
				r, err := nc.Request(req.subject, []byte(req.body), 2*time.Second)
				if err == nil && !strings.Contains(string(r.Data), `"error"`) {
					t.Errorf("%s: %s was accepted: %s", who, req.subject, r.Data)
				}
			}
		}
	}
	p.intact(t)
}

// Clients write only their own node's origin: neither a JetStream publish nor
// a core publish on a to b's origin subject is stored.
func TestIsolationNoWriteToAnotherNodesOrigin(t *testing.T) {
	p := isolatedPair(t)
	spoofed := "txn.dev.dog.b"
	for who, nc := range p.attackers(t) {
		js, _ := jetstream.New(nc)
		ctx, cancel := shortCtx()
		if ack, err := js.Publish(ctx, spoofed, []byte("forged-js-"+who)); err == nil {
			t.Errorf("%s's publish to %s on a was acknowledged: %+v", who, spoofed, ack)
		}
		cancel()
		if err := nc.Publish(spoofed, []byte("forged-core-"+who)); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// A later write of the service's own, then b's own: once they are stored
	// in order, the forgeries would have been stored before them.
	p.intact(t)
	for _, n := range []*node.Node{p.a, p.b} {
		for _, payload := range internalPayloads(t, n, spoofed) {
			if strings.HasPrefix(payload, "forged") {
				t.Errorf("%s stored %q as b's transaction", n.Name(), payload)
			}
		}
	}
}

// Nothing an app publishes reaches an inter-node subject: b's node_remove
// neither arrives (clusterd's own subscriber on b sees only signed calls, and
// none with the attacker's body) nor takes effect.
func TestIsolationNoInterNodeCallLands(t *testing.T) {
	p := isolatedPair(t)
	var mu sync.Mutex
	var seen []string
	spy, err := nodetest.Internal(t, p.b).Subscribe("_clusterd.>", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, "txn.") {
			// Replication: a's transactions (an app's writes, allowed on
			// its own node) reach b through a lane's deliver subject
			// (_clusterd.repl.>), which shows the transaction's subject.
			return
		}
		mu.Lock()
		seen = append(seen, m.Subject+" "+string(m.Data))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = spy.Unsubscribe() }()
	body := `{"attack":"node_remove-from-an-app"}`
	for who, nc := range p.attackers(t) {
		for _, subject := range []string{"_clusterd.node.b.node_remove", "_clusterd.all.status", "_clusterd.announce.restarted.a"} {
			m := nats.NewMsg(subject)
			m.Data = []byte(body)
			m.Header.Set("Clusterd-From", "a")
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Request(subject, []byte(body), 300*time.Millisecond); err == nil {
				t.Errorf("%s's request on %s was answered", who, subject)
			}
		}
	}
	// Reply subjects are the requester's own: a request whose reply names an
	// inter-node subject gets its answer (an operation's reply, a JetStream
	// ack) in the requester's account, never on b's subject.
	for _, nc := range p.attackers(t) {
		for _, subject := range []string{"ops.node.b.cluster.cluster_get_routes", "ops.cluster.cluster_get_routes", "txn.dev.dog.a", "$JS.API.STREAM.INFO.txn"} {
			m := nats.NewMsg(subject)
			m.Reply = "_clusterd.node.b.node_remove"
			m.Data = []byte(`{"attack":"reply"}`)
			m.Header.Set("Authorization", "Bearer "+nodetest.SuperUser(t, p.b))
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Positive control: clusterd's own inter-node traffic does reach the spy.
	op(t, p.a, "cluster_status", map[string]any{}, 200)
	nodetest.Eventually(t, 10*time.Second, "b's spy to see a's status call", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if strings.HasPrefix(s, "_clusterd.node.b.status ") {
				return true
			}
		}
		return false
	})
	mu.Lock()
	for _, s := range seen {
		if strings.Contains(s, "attack") || strings.Contains(s, `"hub"`) || strings.Contains(s, `"stream"`) || strings.Contains(s, "io.nats.jetstream") {
			t.Errorf("an app's message or a reply to it reached b on %s", s)
		}
	}
	mu.Unlock()
	if _, ok := record(t, p.b, "a"); !ok {
		t.Fatal("b no longer holds its record of a")
	}
	p.intact(t)
}

// No subscription of an app's sees anyone else's traffic: operation requests
// with their tokens, replies, inter-node calls, JetStream API traffic.
func TestIsolationSubscriptionsSeeOnlyTheirOwnAccount(t *testing.T) {
	p := isolatedPair(t)
	sniffer := connectAs(t, p.a, spyUser, spyPass)
	var mu sync.Mutex
	var got []string
	for _, subject := range []string{">", "_INBOX.>", "_R_.>", "$JS.>", "ops.>", "_clusterd.>", "$SRV.>", "txn.>"} {
		if _, err := sniffer.Subscribe(subject, func(m *nats.Msg) {
			mu.Lock()
			got = append(got, m.Subject)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sniffer.Flush(); err != nil {
		t.Fatal(err)
	}
	// The operator works: operations (tokens in headers), node-addressed
	// operations across the mesh, JetStream reads; replication flows.
	operator := nodetest.Connect(t, p.a)
	tok := nodetest.SuperUser(t, p.a)
	for _, subject := range []string{"ops.cluster.cluster_status", "ops.node.a.cluster.cluster_get_routes", "ops.cluster.describe_all"} {
		if r := nodetest.Request(t, operator, subject, tok, `{}`); r.Status != 200 {
			t.Fatalf("%s: %d %s", subject, r.Status, r.Body)
		}
	}
	if r := nodetest.Request(t, operator, "ops.node.b.cluster.cluster_get_routes", nodetest.SuperUser(t, p.b), `{}`); r.Status != 200 {
		t.Fatalf("ops.node.b: %d %s", r.Status, r.Body)
	}
	if got := streamPayloads(t, operator, "txn.dev.dog.*"); len(got) == 0 {
		t.Fatal("the operator read nothing")
	}
	p.replicates(t, "sniffed")
	// Positive control: the sniffer's own message arrives, after everything
	// above (one connection's messages arrive in order).
	if err := sniffer.Publish("own.marker", []byte("x")); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 5*time.Second, "the sniffer's own message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, "own.marker")
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range got {
		if s != "own.marker" {
			t.Errorf("the spy's subscription received %s", s)
		}
	}
}

// Consumers: push consumers (whose deliver subject could be an inter-node
// subject) are refused; clusterd's and peers' consumers cannot be deleted or
// replaced; an app's consumer is its own.
func TestIsolationConsumers(t *testing.T) {
	p := isolatedPair(t)
	ctx := context.Background()
	atk := p.attackers(t)
	for who, nc := range atk {
		js, _ := jetstream.New(nc)
		s, err := js.Stream(ctx, "txn")
		if err != nil {
			t.Fatalf("%s: stream info: %v", who, err)
		}
		for _, deliver := range []string{"_clusterd.node.b.node_remove", "ops.cluster.cluster_set_routes", "elsewhere"} {
			cfg := map[string]any{"stream_name": "txn", "config": map[string]any{"name": "push" + who, "deliver_subject": deliver, "ack_policy": "none"}}
			b, _ := json.Marshal(cfg)
			r, err := nc.Request("$JS.API.CONSUMER.CREATE.txn.push"+who, b, 2*time.Second)
			if err != nil || !strings.Contains(string(r.Data), "push consumers are not allowed") {
				t.Errorf("%s: push consumer to %s: %v %s", who, deliver, err, msgData(r))
			}
		}
		// Consumers without an owner: clusterd's (one made here as clusterd
		// makes them), and the hidden ones b's source reads a through.
		internal, _ := jetstream.New(nodetest.Internal(t, p.a))
		is, _ := internal.Stream(ctx, "txn")
		if _, err := is.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Name: "clusterd-reader", AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true}); err != nil {
			t.Fatal(err)
		}
		theirs := []string{"clusterd-reader"}
		for name := range is.ConsumerNames(ctx).Name() {
			if !strings.HasPrefix(name, "own-") {
				theirs = append(theirs, name)
			}
		}
		for _, name := range theirs {
			ctx, cancel := shortCtx()
			if err := s.DeleteConsumer(ctx, name); err == nil {
				t.Errorf("%s deleted consumer %s", who, name)
			}
			if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Name: name, AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
				t.Errorf("%s replaced consumer %s", who, name)
			}
			cancel()
			// By name: clusterd's replication lanes are push consumers,
			// which jetstream's Consumer refuses to hand out.
			still := false
			for n := range is.ConsumerNames(context.Background()).Name() {
				still = still || n == name
			}
			if !still {
				t.Errorf("consumer %s is gone after %s's attempts", name, who)
			}
		}
		// Nor pull from or acknowledge them: clusterd's pull consumer
		// delivers nothing to the app.
		r, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.txn.clusterd-reader", []byte(`{"batch":10,"expires":500000000}`), 2*time.Second)
		if err == nil && len(r.Data) > 0 {
			t.Errorf("%s pulled from clusterd's consumer: %s", who, r.Data)
		}
		if err := nc.Publish("$JS.ACK.txn.clusterd-reader.1.1.1.1.0", []byte("+TERM")); err != nil {
			t.Fatal(err)
		}
		if info, err := is.Consumer(ctx, "clusterd-reader"); err != nil {
			t.Fatal(err)
		} else if ci := info.CachedInfo(); ci.Delivered.Consumer != 0 || ci.NumPending == 0 {
			t.Errorf("clusterd's consumer delivered %d (pending %d) after %s's pull", ci.Delivered.Consumer, ci.NumPending, who)
		}
		// Their own pull consumer works: create, read, delete.
		c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Name: "own-" + who, FilterSubject: "txn.dev.dog.*", AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: true})
		if err != nil {
			t.Fatalf("%s's own consumer: %v", who, err)
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another account cannot delete or replace it, nor pull from it.
	js, _ := jetstream.New(atk["service"])
	s, _ := js.Stream(ctx, "txn")
	if r, err := atk["service"].Request("$JS.API.CONSUMER.MSG.NEXT.txn.own-operator", []byte(`{"batch":10,"expires":500000000}`), 2*time.Second); err == nil && len(r.Data) > 0 {
		t.Errorf("the service pulled from the operator's consumer: %s", r.Data)
	}
	// Nor take its name over on another node's start-up… or here.
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Name: "own-operator", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Error("the service made a consumer under the operator's name")
	}
	if err := s.DeleteConsumer(ctx, "own-operator"); err == nil {
		t.Error("the service deleted the operator's consumer")
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Name: "own-operator", AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Error("the service replaced the operator's consumer")
	}
	if err := s.DeleteConsumer(ctx, "own-service"); err != nil {
		t.Errorf("the service could not delete its own consumer: %v", err)
	}
	internal, _ := jetstream.New(nodetest.Internal(t, p.a))
	is, _ := internal.Stream(ctx, "txn")
	for name := range is.ListConsumers(ctx).Info() {
		if name.Config.DeliverSubject != "" && strings.HasPrefix(name.Name, "push") {
			t.Errorf("push consumer %s exists", name.Name)
		}
	}
	if _, err := is.Consumer(ctx, "own-operator"); err != nil {
		t.Errorf("the operator's consumer is gone: %v", err)
	}
	p.intact(t)
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// A rogue nats-server with the credentials clusterd hands out can join the
// mesh neither as a route nor as a leafnode.
func TestIsolationRogueServerCannotJoin(t *testing.T) {
	a, logs := nodetest.StartLogged(t, func() node.Config {
		cfg := nodetest.Config(t, "a")
		cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: svcUser, Password: svcPass}}
		return cfg
	}())
	ports := a.Servers.Ports()
	for _, cred := range [][2]string{{a.OperatorUser(), a.OperatorPassword()}, {svcUser, svcPass}} {
		routeURL, _ := url.Parse(fmt.Sprintf("nats-route://%s:%s@127.0.0.1:%d", cred[0], cred[1], ports.Cluster))
		var remotes []*server.RemoteLeafOpts
		for _, port := range []int{ports.HubLeaf, ports.LeafClient, ports.HubClient} {
			u, _ := url.Parse(fmt.Sprintf("nats-leaf://%s:%s@127.0.0.1:%d", cred[0], cred[1], port))
			remotes = append(remotes, &server.RemoteLeafOpts{URLs: []*url.URL{u}})
		}
		rogue, err := server.NewServer(&server.Options{
			ServerName: "rogue-hub", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
			Cluster:  server.ClusterOpts{Name: a.Config.Clustering.HubServer.Cluster.Name, Host: "127.0.0.1", Port: server.RANDOM_PORT},
			Routes:   []*url.URL{routeURL},
			LeafNode: server.LeafNodeOpts{Remotes: remotes, ReconnectInterval: 50 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		rogue.Start()
		before := countLogs(logs, "authentication error")
		// It tried, and a's servers refused each attempt.
		nodetest.Eventually(t, 10*time.Second, "a to refuse the rogue's route and leafnodes", func() bool {
			return countLogs(logs, "authentication error") >= before+4
		})
		if len(a.Servers.RoutedPeers()) != 0 || a.Servers.Hub.NumLeafNodes() != 1 || rogue.NumRoutes() != 0 || rogue.NumLeafNodes() != 0 {
			t.Errorf("rogue with %s's credentials linked: a routes %v, a hub leafnodes %d, rogue routes %d leafnodes %d",
				cred[0], a.Servers.RoutedPeers(), a.Servers.Hub.NumLeafNodes(), rogue.NumRoutes(), rogue.NumLeafNodes())
		}
		rogue.Shutdown()
		rogue.WaitForShutdown()
	}
}

// The positive side: the operator with the printed context's credentials
// runs operations and nats micro; a data service writes its tables and
// reads them every way describe_all points to.
func TestIsolationUsersDoTheirWork(t *testing.T) {
	p := isolatedPair(t)
	ctx := context.Background()
	operator := nodetest.Connect(t, p.a)
	tok := nodetest.SuperUser(t, p.a)
	if r := nodetest.Request(t, operator, "ops.cluster.cluster_status", tok, `{}`); r.Status != 200 {
		t.Fatalf("cluster_status: %d %s", r.Status, r.Body)
	}
	// nats micro ls: the PING of the micro protocol finds the service.
	r, err := operator.Request("$SRV.PING.clusterd", nil, 2*time.Second)
	if err != nil || !strings.Contains(string(r.Data), `"name":"clusterd"`) {
		t.Fatalf("$SRV.PING.clusterd: %v %s", err, msgData(r))
	}

	svc := connectAs(t, p.a, svcUser, svcPass)
	js, _ := jetstream.New(svc)
	ack, err := js.Publish(ctx, "txn.dev.dog.a", []byte("svc-write"), jetstream.WithMsgID("svc-write-1"))
	if err != nil || ack.Stream != "txn" || ack.Domain != "a" {
		t.Fatalf("service write: %+v %v", ack, err)
	}
	// Stream info, direct get, message get, ordered and durable consumers.
	s, err := js.Stream(ctx, "txn")
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().State.LastSeq != ack.Sequence {
		t.Fatalf("stream info last seq %d, ack %d", s.CachedInfo().State.LastSeq, ack.Sequence)
	}
	if m, err := s.GetLastMsgForSubject(ctx, "txn.dev.dog.a"); err != nil || string(m.Data) != "svc-write" {
		t.Fatalf("direct get: %v", err)
	}
	if m, err := s.GetMsg(ctx, ack.Sequence); err != nil || string(m.Data) != "svc-write" {
		t.Fatalf("message get: %v", err)
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"txn.dev.dog.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := oc.Fetch(1, jetstream.FetchMaxWait(5*time.Second)); err != nil || len(collectMsgs(b)) != 1 {
		t.Fatalf("ordered consumer: %v", err)
	}
	dc, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "svc-reader", FilterSubject: "txn.dev.dog.*", AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dc.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msgs := collectMsgs(b)
	if len(msgs) != 2 {
		t.Fatalf("durable consumer delivered %d", len(msgs))
	}
	for _, m := range msgs {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	// Updating its own durable is allowed.
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "svc-reader", FilterSubject: "txn.dev.dog.*", AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: true, Description: "changed"}); err != nil {
		t.Fatalf("update own consumer: %v", err)
	}
	if info, err := dc.Info(ctx); err != nil || info.NumAckPending != 0 || info.Config.Metadata[topology.OwnerKey] != topology.AppAccount(svcUser) {
		t.Fatalf("consumer info: %+v %v", info, err)
	}
	if err := s.DeleteConsumer(ctx, "svc-reader"); err != nil {
		t.Fatal(err)
	}
	p.intact(t)
}

func collectMsgs(b jetstream.MessageBatch) []jetstream.Msg {
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	return out
}

// A service's durable consumer is its own again after the node restarts: it
// pulls from it as before, and another service still cannot.
func TestIsolationDurableConsumerSurvivesRestart(t *testing.T) {
	cfg := nodetest.Config(t, "r")
	cfg.Clustering.LeafServer.Users = []node.LeafUser{{User: svcUser, Password: svcPass}, {User: spyUser, Password: spyPass}}
	n := nodetest.Start(t, cfg)
	op(t, n, "create_table", map[string]any{"database": "dev", "table": "dog"}, 200)
	ctx := context.Background()
	js, _ := jetstream.New(connectAs(t, n, svcUser, svcPass))
	for i := range 3 {
		if _, err := js.Publish(ctx, "txn.dev.dog.r", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := js.Stream(ctx, "txn")
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "orders-reader", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = nodetest.Start(t, cfg)
	spy := connectAs(t, n, spyUser, spyPass)
	if r, err := spy.Request("$JS.API.CONSUMER.MSG.NEXT.txn.orders-reader", []byte(`{"batch":1,"expires":500000000}`), 2*time.Second); err == nil && len(r.Data) > 0 {
		t.Errorf("another service pulled from it: %s", r.Data)
	}
	js, _ = jetstream.New(connectAs(t, n, svcUser, svcPass))
	c, err := js.Consumer(ctx, "txn", "orders-reader")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := collectMsgs(b); len(got) != 3 {
		t.Fatalf("after the restart the service pulled %d of 3", len(got))
	}
}
