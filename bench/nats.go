package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bareServer starts a nats-server on 127.0.0.1 (ephemeral ports) with opts.
func bareServer(opts *server.Options) (*server.Server, error) {
	opts.Host = "127.0.0.1"
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoSigs, opts.NoLog, opts.DisableJetStreamBanner = true, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("server %s not ready", opts.ServerName)
	}
	return s, nil
}

func shutdown(servers ...*server.Server) {
	for _, s := range servers {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}

func leafURL(s *server.Server) (*url.URL, error) {
	v, err := s.Varz(nil)
	if err != nil {
		return nil, err
	}
	return url.Parse(fmt.Sprintf("nats-leaf://127.0.0.1:%d", v.LeafNode.Port))
}

// dial opens n connections to url.
func dial(url string, n int, opts ...nats.Option) ([]*nats.Conn, error) {
	var out []*nats.Conn
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, nc)
	}
	return out, nil
}

func closeAll(conns []*nats.Conn) {
	for _, nc := range conns {
		nc.Close()
	}
}

// payload returns n random bytes (incompressible, like real transactions).
func payload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// streamConfig is a file stream configured like clusterd's transaction
// stream, so the publish floor stores messages the same way.
func streamConfig(name string, subjects ...string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              name,
		Subjects:          subjects,
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Replicas:          1,
		AllowDirect:       true,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		Duplicates:        2 * time.Minute,
	}
}

// arrival is a message a watcher saw, and when.
type arrival struct {
	at   time.Time
	data string
}

// watcher sees every message of a stream matching a filter as it is stored,
// through an ordered consumer (how a data service reads transactions).
type watcher struct {
	cc jetstream.ConsumeContext
	ch chan arrival
}

func watch(ctx context.Context, js jetstream.JetStream, stream, filter string) (*watcher, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("watch %s on %s: %w", filter, stream, err)
	}
	w := &watcher{ch: make(chan arrival, 1<<16)}
	w.cc, err = c.Consume(func(m jetstream.Msg) {
		a := arrival{at: time.Now(), data: string(m.Data())}
		select {
		case w.ch <- a:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watcher) next(timeout time.Duration) (arrival, error) {
	select {
	case a := <-w.ch:
		return a, nil
	case <-time.After(timeout):
		return arrival{}, fmt.Errorf("no message within %v", timeout)
	}
}

func (w *watcher) stop() { w.cc.Stop() }

// bulkRate publishes n 1 KiB messages on subject through pub and returns the
// rate (messages per second) from the first publish until all of them are in
// stream on js, which held `before` messages of subject already.
func bulkRate(ctx context.Context, pub *nats.Conn, js jetstream.JetStream, stream, subject string, n int, before uint64) (float64, error) {
	t0 := time.Now()
	if err := publishAll(ctx, pub, subject, n, 1024, pubWindow); err != nil {
		return 0, err
	}
	err := waitFor(2*time.Minute, 2*time.Millisecond, "all "+subject+" in "+stream, func() bool {
		got, err := subjectCount(ctx, js, stream, subject)
		return err == nil && got == uint64(n)+before
	})
	if err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// serveEcho answers every request on subject with its own body.
func serveEcho(nc *nats.Conn, subject string) error {
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return err
	}
	return nc.Flush()
}

// untilStored runs act and returns the time from its start until the first
// message of filter is stored in stream (watched from before act runs).
func untilStored(ctx context.Context, js jetstream.JetStream, stream, filter string, timeout time.Duration, act func() error) (time.Duration, error) {
	w, err := watch(ctx, js, stream, filter)
	if err != nil {
		return 0, err
	}
	defer w.stop()
	t0 := time.Now()
	if err := act(); err != nil {
		return 0, err
	}
	a, err := w.next(timeout)
	if err != nil {
		return 0, err
	}
	return a.at.Sub(t0), nil
}

// publishAll publishes n messages of size bytes on subject as fast as acks
// allow (up to window in flight) and returns when all are acknowledged.
func publishAll(ctx context.Context, nc *nats.Conn, subject string, n, size, window int) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		return err
	}
	data := payload(size)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(subject, data, jetstream.WithStallWait(30*time.Second)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("publishing %d messages did not complete", n)
	}
	if f := js.PublishAsyncPending(); f != 0 {
		return fmt.Errorf("%d publishes not acknowledged", f)
	}
	return nil
}

// subjectCount returns how many messages stream holds on subjects matching filter.
func subjectCount(ctx context.Context, js jetstream.JetStream, stream, filter string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}
