package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/clusterd/clusterd/topology"
	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// floorEcho: request/reply through one embedded server, the responder
// connected in-process like clusterd's own connection, requesters over TCP
// carrying the same Authorization header clusterd requests carry.
func (r *runner) floorEcho() error {
	srv, err := bareServer(&server.Options{ServerName: "echo"})
	if err != nil {
		return err
	}
	defer shutdown(srv)
	resp, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := serveEcho(resp, "echo"); err != nil {
		return err
	}
	conns, err := dial(srv.ClientURL(), 32)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	msg := func(int) *nats.Msg {
		m := nats.NewMsg("echo")
		m.Header.Set("Authorization", "Bearer "+r.token)
		m.Data = []byte(`{}`)
		return m
	}
	one, err := requestLoad(conns[:1], msg, r.sz.warm, 0, r.sz.reqCount, nil)
	if err != nil {
		return err
	}
	r.set("floor.echo.p50", us(pct(one.lat, 50)))
	r.set("floor.echo.p99", us(pct(one.lat, 99)))
	many, err := requestLoad(conns, msg, r.sz.warm, r.sz.loadDur, 0, nil)
	if err != nil {
		return err
	}
	r.set("floor.echo.p50_32", us(pct(many.lat, 50)))
	r.set("floor.echo.p99_32", us(pct(many.lat, 99)))
	r.set("floor.echo.rate_32", many.rate)
	return nil
}

// floorBadger: one synced write with the store's Badger options and
// Badger's own SyncWrites (each commit syncs the WAL and the value log, as
// the store's DB.Sync per batch does), then 64 concurrent writers (Badger
// batches their value-log syncs, not their WAL syncs).
func (r *runner) floorBadger() error {
	db, err := badger.Open(syncedBadger(filepath.Join(r.dir, "badger-floor")))
	if err != nil {
		return err
	}
	defer db.Close()
	val := payload(200)
	write := func(k string) error {
		return db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(k), val) })
	}
	for i := 0; i < 20; i++ { // warm
		if err := write("warm" + strconv.Itoa(i)); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, r.sz.syncWrites)
	for i := 0; i < r.sz.syncWrites; i++ {
		t0 := time.Now()
		if err := write("k" + strconv.Itoa(i)); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	r.set("floor.badger.sync_p50", us(pct(lat, 50)))

	// Our write and the peer's side by side: two stores on the one disk.
	db2, err := badger.Open(syncedBadger(filepath.Join(r.dir, "badger-floor-2")))
	if err != nil {
		return err
	}
	defer db2.Close()
	pair := make([]time.Duration, 0, r.sz.syncWrites)
	for i := 0; i < r.sz.syncWrites; i++ {
		k := []byte("pair" + strconv.Itoa(i))
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { errc <- db2.Update(func(txn *badger.Txn) error { return txn.Set(k, val) }) }()
		err1 := db.Update(func(txn *badger.Txn) error { return txn.Set(k, val) })
		err2 := <-errc
		if err1 != nil || err2 != nil {
			return errors.Join(err1, err2)
		}
		pair = append(pair, time.Since(t0))
	}
	r.set("floor.badger.sync2_p50", us(pct(pair, 50)))

	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if err := write(fmt.Sprintf("w%d/%d", w, i)); err != nil {
					errc <- err
					return
				}
				n.Add(1)
			}
		}(w)
	}
	t0 := time.Now()
	time.Sleep(r.sz.loadDur)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	r.set("floor.badger.rate_64", float64(n.Load())/time.Since(t0).Seconds())
	return nil
}

func syncedBadger(dir string) badger.Options {
	return storage.BadgerOptions(dir).WithSyncWrites(true)
}

// floorMeshEcho: request/reply from one node's leaf server to another's,
// through both hubs (leaf → hub → route → hub → leaf): the path of every
// inter-node call, with clusterd's own server set-up and nothing else.
func (r *runner) floorMeshEcho() error {
	start := func(name string) (*topology.Servers, error) {
		return topology.StartServers(topology.ServerOptions{NodeName: name, Host: "127.0.0.1", ClusterName: "floor",
			User: "cluster_user", Password: benchPassword, StoreDir: filepath.Join(r.dir, "mesh-floor", name, "jetstream"), Log: zap.NewNop()})
	}
	a, err := start("fa")
	if err != nil {
		return err
	}
	defer a.Shutdown()
	b, err := start("fb")
	if err != nil {
		return err
	}
	defer b.Shutdown()
	if err := b.ApplyHubRoutes([]storage.Route{{Host: "127.0.0.1", Port: a.Ports().Cluster}}); err != nil {
		return err
	}
	if err := waitFor(10*time.Second, time.Millisecond, "floor mesh", func() bool { return len(a.RoutedPeers()) == 1 && len(b.RoutedPeers()) == 1 }); err != nil {
		return err
	}
	resp, err := b.InternalConn("responder")
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := serveEcho(resp, "echo.fb"); err != nil {
		return err
	}
	req, err := a.InternalConn("requester")
	if err != nil {
		return err
	}
	defer req.Close()
	if err := waitFor(10*time.Second, 5*time.Millisecond, "responder reachable", func() bool {
		_, err := req.Request("echo.fb", nil, 100*time.Millisecond)
		return err == nil
	}); err != nil {
		return err
	}
	msg := func(int) *nats.Msg { return &nats.Msg{Subject: "echo.fb", Data: []byte(`{}`)} }
	res, err := requestLoad([]*nats.Conn{req}, msg, r.sz.warm, 0, r.sz.reqCount, nil)
	if err != nil {
		return err
	}
	r.set("floor.mesh.p50", us(pct(res.lat, 50)))

	// Replication throughput across the same topology, with a bare source
	// between the two leaf servers' JetStream (domains fa, fb): what NATS
	// itself costs on clusterd's path, without clusterd.
	pub, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", a.Ports().LeafClient), a.InternalUserInfo())
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", b.Ports().LeafClient), b.InternalUserInfo())
	if err != nil {
		return err
	}
	defer sub.Close()
	jsa, _ := jetstream.New(pub)
	jsb, _ := jetstream.New(sub)
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Minute)
	defer cancel()
	if _, err := jsa.CreateStream(ctx, streamConfig("mrp", "mrp.>")); err != nil {
		return err
	}
	in := streamConfig("mrpin")
	in.Subjects = nil
	in.Sources = []*jetstream.StreamSource{{Name: "mrp", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: "mrp.x", Destination: "mrp.x"}},
		External: &jetstream.ExternalStream{APIPrefix: "$JS.fa.API"}}}
	if _, err := jsb.CreateStream(ctx, in); err != nil {
		return err
	}
	if _, err := jsa.Publish(ctx, "mrp.x", []byte("first")); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, 2*time.Millisecond, "first message across the floor mesh", func() bool {
		n, err := subjectCount(ctx, jsb, "mrpin", "mrp.x")
		return err == nil && n == 1
	}); err != nil {
		return err
	}
	rate, err := bulkRate(ctx, pub, jsb, "mrpin", "mrp.x", r.sz.bulk, 1)
	if err != nil {
		return fmt.Errorf("bulk across the floor mesh: %w", err)
	}
	r.set("floor.mesh.repl_rate", rate)
	var echo, sync2 *float64
	for _, f := range r.report.Figures {
		switch f.ID {
		case "floor.echo.p50":
			echo = f.Value
		case "floor.badger.sync2_p50":
			sync2 = f.Value
		}
	}
	if echo != nil && sync2 != nil {
		r.set("floor.mutate", *echo+us(pct(res.lat, 50))+*sync2)
	}
	return nil
}

func jsServer(name, dir string, leafListen bool, remote *url.URL) (*server.Server, error) {
	o := &server.Options{ServerName: name, JetStream: true, JetStreamDomain: name, StoreDir: filepath.Join(dir, name)}
	if leafListen {
		o.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: server.RANDOM_PORT}
	}
	if remote != nil {
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{remote}}}
	}
	return bareServer(o)
}

// floorPublish: JetStream publishes of 1 KiB to a file stream configured
// like clusterd's, acknowledged one at a time, then pipelined.
func (r *runner) floorPublish() error {
	srv, err := jsServer("pub", r.dir, false, nil)
	if err != nil {
		return err
	}
	defer shutdown(srv)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, streamConfig("pub", "pub.>")); err != nil {
		return err
	}
	data := payload(1024)
	lat := make([]time.Duration, 0, r.sz.pubCount)
	for i := 0; i < r.sz.pubCount+50; i++ {
		t0 := time.Now()
		if _, err := js.Publish(ctx, "pub.one", data); err != nil {
			return err
		}
		if i >= 50 {
			lat = append(lat, time.Since(t0))
		}
	}
	r.set("floor.js.pub_p50", us(pct(lat, 50)))
	t0, c0 := time.Now(), cpuTime()
	if err := publishAll(ctx, nc, "pub.bulk", r.sz.bulk, 1024, pubWindow); err != nil {
		return err
	}
	r.set("floor.js.pub_rate", float64(r.sz.bulk)/time.Since(t0).Seconds())
	r.set("floor.js.pub_cpu", us(cpuTime()-c0)/float64(r.sz.bulk), "CPU time (user + system) of this process — publisher and server — over the bulk publish, per message.")
	return nil
}

// pubWindow is how many publishes may await their ack in throughput runs.
const pubWindow = 512

// floorSource: server x (domain x) with a leafnode listener, server y
// (domain y) a leafnode of x; y's streams source x's stream across domains
// (the way clusterd's nodes source each other, minus the hubs).
func (r *runner) floorSource() error {
	x, err := jsServer("x", r.dir, true, nil)
	if err != nil {
		return err
	}
	defer shutdown(x)
	u, err := leafURL(x)
	if err != nil {
		return err
	}
	y, err := jsServer("y", r.dir, false, u)
	if err != nil {
		return err
	}
	defer shutdown(y)
	if err := waitFor(10*time.Second, time.Millisecond, "leafnode link", func() bool { return y.NumLeafNodes() == 1 && x.NumLeafNodes() == 1 }); err != nil {
		return err
	}
	ncx, err := nats.Connect(x.ClientURL())
	if err != nil {
		return err
	}
	defer ncx.Close()
	ncy, err := nats.Connect(y.ClientURL())
	if err != nil {
		return err
	}
	defer ncy.Close()
	jsx, _ := jetstream.New(ncx)
	jsy, _ := jetstream.New(ncy)
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Minute)
	defer cancel()
	if _, err := jsx.CreateStream(ctx, streamConfig("src", "src.>")); err != nil {
		return err
	}
	source := func(subject string) *jetstream.StreamSource {
		return &jetstream.StreamSource{Name: "src", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: subject, Destination: subject}},
			External: &jetstream.ExternalStream{APIPrefix: "$JS.x.API"}}
	}

	// Start delay: add a source for a subject that already holds a message
	// to an existing stream, time until the message is there.
	st := streamConfig("st", "st.local")
	if _, err := jsy.CreateStream(ctx, st); err != nil {
		return err
	}
	var starts []time.Duration
	for i := 0; i < r.sz.startTrials; i++ {
		subj := fmt.Sprintf("src.start%d", i)
		if _, err := jsx.Publish(ctx, subj, []byte("x")); err != nil {
			return err
		}
		st.Sources = append(st.Sources, source(subj))
		d, err := untilStored(ctx, jsy, "st", subj, 10*time.Second, func() error { _, err := jsy.UpdateStream(ctx, st); return err })
		if err != nil {
			return fmt.Errorf("source start: %w", err)
		}
		starts = append(starts, d)
	}
	r.set("floor.source.start_p50", ms(pct(starts, 50)), fmt.Sprintf("%d trials; nats-server schedules a new source's consumer 100–200 ms (jittered) after the stream update.", len(starts)))

	// The same table joining a source that already flows: the source follows
	// a durable consumer on x (AckPolicy flow_control, nats-server 2.14+
	// "durable sourcing"), and the table joins by a filter update of that
	// consumer; y's stream config (so its sources) does not change.
	dcfg := jetstream.ConsumerConfig{Durable: "dur", DeliverSubject: "deliver.y.dur", AckPolicy: jetstream.AckFlowControlPolicy,
		IdleHeartbeat: time.Second, FilterSubjects: []string{"src.dur.seed"}}
	if _, err := jsx.CreateOrUpdatePushConsumer(ctx, "src", dcfg); err != nil {
		return fmt.Errorf("durable consumer: %w", err)
	}
	ds := streamConfig("ds")
	ds.Subjects = nil
	ds.Sources = []*jetstream.StreamSource{{Name: "src", External: &jetstream.ExternalStream{APIPrefix: "$JS.x.API"},
		Consumer: &jetstream.StreamConsumerSource{Name: "dur", DeliverSubject: "deliver.y.dur"}}}
	if _, err := jsy.CreateStream(ctx, ds); err != nil {
		return fmt.Errorf("durable source: %w", err)
	}
	wseed, err := watch(ctx, jsy, "ds", "src.dur.seed")
	if err != nil {
		return err
	}
	if _, err = jsx.Publish(ctx, "src.dur.seed", []byte("x")); err == nil {
		_, err = wseed.next(10 * time.Second)
	}
	wseed.stop()
	if err != nil {
		return fmt.Errorf("durable source: %w", err)
	}
	var joins []time.Duration
	for i := 0; i < r.sz.startTrials; i++ {
		subj := fmt.Sprintf("src.dur%d", i)
		dcfg.FilterSubjects = append(dcfg.FilterSubjects, subj)
		d, err := untilStored(ctx, jsy, "ds", subj, 10*time.Second, func() error {
			if _, err := jsx.CreateOrUpdatePushConsumer(ctx, "src", dcfg); err != nil {
				return err
			}
			_, err := jsx.Publish(ctx, subj, []byte("x"))
			return err
		})
		if err != nil {
			return fmt.Errorf("table joining a durable source: %w", err)
		}
		joins = append(joins, d)
	}
	r.set("floor.source.join_p50", ms(pct(joins, 50)), fmt.Sprintf("%d trials: consumer filter update on x, then a message of the new subject published, until it is on y.", len(joins)))

	// Catch-up: a new source over a stream holding bulk messages.
	if err := publishAll(ctx, ncx, "src.bulk", r.sz.bulk, 1024, pubWindow); err != nil {
		return err
	}
	cu := streamConfig("cu")
	cu.Subjects = nil
	cu.Sources = []*jetstream.StreamSource{source("src.bulk")}
	if _, err := jsy.CreateStream(ctx, cu); err != nil {
		return err
	}
	var first time.Time
	err = waitFor(2*time.Minute, 2*time.Millisecond, "catch-up", func() bool {
		n, err := subjectCount(ctx, jsy, "cu", "src.bulk")
		if err != nil {
			return false
		}
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		return n == uint64(r.sz.bulk)
	})
	if err != nil {
		return err
	}
	r.set("floor.source.catchup_rate", float64(r.sz.bulk)/time.Since(first).Seconds())

	// Start delay again, on the stream that now holds the bulk.
	var bigStarts []time.Duration
	for i := 0; i < r.sz.bigTrials; i++ {
		subj := fmt.Sprintf("src.big%d", i)
		if _, err := jsx.Publish(ctx, subj, []byte("x")); err != nil {
			return err
		}
		cu.Sources = append(cu.Sources, source(subj))
		d, err := untilStored(ctx, jsy, "cu", subj, 30*time.Second, func() error { _, err := jsy.UpdateStream(ctx, cu); return err })
		if err != nil {
			return fmt.Errorf("source start on a big stream: %w", err)
		}
		bigStarts = append(bigStarts, d)
	}
	r.set("floor.source.start_big_p50", ms(pct(bigStarts, 50)), fmt.Sprintf("%d trials; the stream holds %d messages of 1 KiB.", len(bigStarts), r.sz.bulk))

	// Replication throughput: a source already flowing while bulk messages
	// are published on x; rate until all are on y.
	rp := streamConfig("rp")
	rp.Subjects = nil
	rp.Sources = []*jetstream.StreamSource{source("src.rp")}
	if _, err := jsy.CreateStream(ctx, rp); err != nil {
		return err
	}
	wrp, err := watch(ctx, jsy, "rp", "src.rp")
	if err != nil {
		return err
	}
	_, err = jsx.Publish(ctx, "src.rp", []byte("first"))
	if err == nil {
		_, err = wrp.next(30 * time.Second)
	}
	wrp.stop()
	if err != nil {
		return fmt.Errorf("replication floor: %w", err)
	}
	rate, err := bulkRate(ctx, ncx, jsy, "rp", "src.rp", r.sz.bulk, 1)
	if err != nil {
		return fmt.Errorf("bulk on y: %w", err)
	}
	r.set("floor.source.repl_rate", rate)

	// Steady latency at a trickle: publish on x → stored on y.
	lat := streamConfig("lat")
	lat.Subjects = nil
	lat.Sources = []*jetstream.StreamSource{source("src.lat")}
	if _, err := jsy.CreateStream(ctx, lat); err != nil {
		return err
	}
	w, err := watch(ctx, jsy, "lat", "src.lat")
	if err != nil {
		return err
	}
	defer w.stop()
	lats, err := trickle(ctx, jsx, "src.lat", w, r.sz.latSamples)
	if err != nil {
		return err
	}
	r.set("floor.source.lat_p50", ms(pct(lats, 50)))
	r.set("floor.source.lat_p99", ms(pct(lats, 99)))
	return nil
}

// trickle publishes samples messages one at a time on subject and returns,
// for each, the time from sending it to w seeing it: the publish ack comes
// back to the publisher about when the message is relayed onwards, so
// "sent → visible" is the measurable upper bound of "acknowledged →
// visible". The first message (not counted) proves the path flows.
func trickle(ctx context.Context, js jetstream.JetStream, subject string, w *watcher, samples int) ([]time.Duration, error) {
	if _, err := js.Publish(ctx, subject, []byte("warm")); err != nil {
		return nil, err
	}
	if _, err := w.next(30 * time.Second); err != nil {
		return nil, fmt.Errorf("first message on %s: %w", subject, err)
	}
	out := make([]time.Duration, 0, samples)
	for i := 0; i < samples; i++ {
		body := strconv.Itoa(i)
		sent := time.Now()
		if _, err := js.Publish(ctx, subject, []byte(body)); err != nil {
			return nil, err
		}
		a, err := w.next(10 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("message %d on %s: %w", i, subject, err)
		}
		if a.data != body {
			return nil, fmt.Errorf("message %d on %s: got %q (lost, duplicated or reordered)", i, subject, a.data)
		}
		out = append(out, a.at.Sub(sent))
		time.Sleep(time.Millisecond)
	}
	return out, nil
}

// floorRoute: two bare servers with cluster listeners; one is reloaded with
// a route to the other; time until both see the route.
func (r *runner) floorRoute() error {
	var ups []time.Duration
	for i := 0; i < r.sz.routeTrials; i++ {
		mk := func(name string) (*server.Server, *server.Options, error) {
			o := &server.Options{ServerName: name, Cluster: server.ClusterOpts{Name: "floor", Host: "127.0.0.1", Port: server.RANDOM_PORT}}
			s, err := bareServer(o)
			return s, o, err
		}
		a, _, err := mk("ra")
		if err != nil {
			return err
		}
		b, bo, err := mk("rb")
		if err != nil {
			shutdown(a)
			return err
		}
		no := bo.Clone()
		no.Routes = []*url.URL{{Scheme: "nats-route", Host: a.ClusterAddr().String()}}
		t0 := time.Now()
		err = b.ReloadOptions(no)
		if err == nil {
			err = waitFor(10*time.Second, 200*time.Microsecond, "bare route", func() bool { return a.NumRoutes() > 0 && b.NumRoutes() > 0 })
		}
		d := time.Since(t0)
		shutdown(b, a)
		if err != nil {
			return err
		}
		ups = append(ups, d)
	}
	r.set("floor.route.up_p50", ms(pct(ups, 50)))
	return nil
}
