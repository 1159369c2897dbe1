package topology

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusterd/clusterd/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// A lane carries some of one origin's tables to this node: a durable push
// consumer on the origin's transaction stream, filtered to those tables'
// subjects, and one source on this node's stream bound to it
// (StreamSource.Consumer, nats-server 2.14+). A table joins a flowing lane
// by a filter update of the consumer — no stream update, no backward scan,
// no start jitter — and leaves it the same way.
//
// Each (subscriber, origin) pair has one main lane per shard, and a
// short-lived catch-up lane for tables whose start lies before the main
// lane's position (a start_time in the past, or transactions written between
// the subscription's start and its join); a catch-up lane joins its main
// lane once both reach the same place.
//
// A lane's consumer name is repl_<subscriber>_<generation>; a lane that is
// lost (its consumer deleted, the origin restarted) is replaced by a new
// generation, a new source here, started exactly after what this node
// imported. Lane consumers live in the origin's memory (MemoryStorage):
// creating a file-backed consumer while the stream's configuration changes
// trips a data race in nats-server 2.15 (fileStore.ConsumerStore reads the
// stream name without a lock), and a lost lane is rebuilt exactly anyway.
type lane struct {
	Peer   string // the origin
	Name   string // consumer name on the origin
	Main   bool   // main lane of its shard (else a catch-up lane)
	Shard  int
	Shards int
	Tables []storage.TableKey // carried tables, sorted

	// Observed on the origin (zero when unknown).
	Next      uint64 // next origin sequence the consumer will look at
	AckFloor  uint64 // acknowledged by this node's stream (flow control)
	Lost      bool   // the source is here, the consumer is not there
	Stalled   bool   // the consumer is there, its source here hears nothing
	Unknown   bool   // the origin could not be asked
	SourceErr string // the error this node's stream reports for the source
	Lag       uint64
	config    *jetstream.ConsumerConfig
}

const (
	lanePrefix = "repl_"
	// laneMarker is a subject no transaction uses: a lane with nothing to
	// carry filters on it (a consumer without filters would carry everything).
	laneMarker = "_clusterd.idle"
	metaSub    = "clusterd_subscriber"
	metaKind   = "clusterd_lane"
	metaShard  = "clusterd_shard"
	kindMain   = "main"
	kindCatch  = "catchup"
)

// MaxLaneTables bounds the tables one lane carries. nats-server checks a
// consumer's filters against each other on every update (quadratic): measured
// here (TestConsumerFilterUpdateCost, 2 cores, load 8) an update took 0.08 ms
// with 1 filter, 1.1 ms with 128, 6.6 ms with 256, 13 ms with 512, 62 ms with
// 1000 and 0.58 s with 2000 — so tables are sharded into lanes of at most
// 256, and a join stays a few milliseconds.
const MaxLaneTables = 256

// LaneCount is how many main lanes a peer's n subscribed tables are spread
// over: one up to MaxLaneTables, then doubling.
func LaneCount(n int) int {
	k := 1
	for k*MaxLaneTables < n {
		k *= 2
	}
	return k
}

// ShardOf is the shard (of shards) a table's replication belongs to.
func ShardOf(k storage.TableKey, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(k.Database))
	h.Write([]byte{0})
	h.Write([]byte(k.Table))
	return int(h.Sum32() % uint32(shards))
}

// encodeNode makes a node name usable in a consumer name (which may not hold
// '/' or '\'); a name that needs it is hex with a '~' in front.
func encodeNode(n string) string {
	if strings.ContainsAny(n, `/\~`) {
		return "~" + hex.EncodeToString([]byte(n))
	}
	return n
}

func decodeNode(s string) (string, bool) {
	if h, ok := strings.CutPrefix(s, "~"); ok {
		b, err := hex.DecodeString(h)
		return string(b), err == nil
	}
	return s, s != ""
}

func newGeneration() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// laneName names a lane's consumer: repl_<subscriber>_<generation>.
func laneName(subscriber, gen string) string { return lanePrefix + encodeNode(subscriber) + "_" + gen }

// parseLaneName reads the subscriber back from a lane's consumer name.
func parseLaneName(name string) (subscriber string, ok bool) {
	rest, ok := strings.CutPrefix(name, lanePrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	return decodeNode(rest[:i])
}

// deliverSubject is where a lane's consumer pushes: unique per lane, inside
// clusterd's own subject space.
func deliverSubject(origin, name string) string { return "_clusterd.repl." + origin + "." + name }

func apiPrefix(peer string) string { return "$JS." + peer + ".API" }

// source renders the lane as this node's stream source. It has no filters or
// transforms of its own (the consumer filters), so its identity in
// nats-server (the index name) never changes while the lane lives.
func (l lane) source() *jetstream.StreamSource {
	return &jetstream.StreamSource{
		Name:     TxnStreamName,
		External: &jetstream.ExternalStream{APIPrefix: apiPrefix(l.Peer)},
		Consumer: &jetstream.StreamConsumerSource{Name: l.Name, DeliverSubject: deliverSubject(l.Peer, l.Name)},
	}
}

// parseLaneSource reads a lane back from a stream source; ok is false for
// sources clusterd did not make.
func parseLaneSource(s *jetstream.StreamSource, self string) (lane, bool) {
	if s == nil || s.Name != TxnStreamName || s.External == nil || s.Consumer == nil {
		return lane{}, false
	}
	peer, ok := strings.CutPrefix(s.External.APIPrefix, "$JS.")
	if !ok {
		return lane{}, false
	}
	if peer, ok = strings.CutSuffix(peer, ".API"); !ok || peer == "" {
		return lane{}, false
	}
	if sub, ok := parseLaneName(s.Consumer.Name); !ok || sub != self || s.Consumer.DeliverSubject != deliverSubject(peer, s.Consumer.Name) {
		return lane{}, false
	}
	return lane{Peer: peer, Name: s.Consumer.Name}, true
}

// Flow-control window of a lane's consumer: with AckPolicy flow_control the
// consumer asks the source to confirm after this many messages (or half its
// byte window); the confirmations move its ack floor.
const laneMaxAckPending = 10000

// laneInactive is how long a lane's consumer lives without the source that
// reads it: nats-server deletes consumers nobody sources after it. A
// subscriber back later rebuilds its lanes exactly from what it imported.
const laneInactive = 15 * time.Minute

// consumerConfig is the lane's consumer, starting at start (an origin
// sequence, at least 1).
func (l lane) consumerConfig(subscriber string, start uint64) jetstream.ConsumerConfig {
	kind := kindCatch
	if l.Main {
		kind = kindMain
	}
	return jetstream.ConsumerConfig{
		Durable:           l.Name,
		Description:       "clusterd replication of " + l.Peer + "'s transactions to " + subscriber,
		DeliverSubject:    deliverSubject(l.Peer, l.Name),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(start, 1),
		AckPolicy:         jetstream.AckFlowControlPolicy,
		FlowControl:       true,
		IdleHeartbeat:     time.Second,
		MaxAckPending:     laneMaxAckPending,
		FilterSubjects:    laneFilters(l.Tables, l.Peer),
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: laneInactive,
		Metadata:          map[string]string{metaSub: subscriber, metaKind: kind, metaShard: fmt.Sprintf("%d/%d", l.Shard, l.Shards)},
	}
}

func laneFilters(tables []storage.TableKey, origin string) []string {
	if len(tables) == 0 {
		return []string{laneMarker}
	}
	return originSubjects(tables, origin)
}

// readConsumer fills the lane from its consumer's info on the origin.
func (l *lane) readConsumer(ci *jetstream.ConsumerInfo) {
	cfg := ci.Config
	l.config = &cfg
	l.Main = cfg.Metadata[metaKind] == kindMain
	if i, k, ok := strings.Cut(cfg.Metadata[metaShard], "/"); ok {
		l.Shard, _ = strconv.Atoi(i)
		l.Shards, _ = strconv.Atoi(k)
	}
	l.Tables = l.Tables[:0]
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = append(filters, cfg.FilterSubject)
	}
	for _, f := range filters {
		if k, origin, ok := ParseSubject(f); ok && origin == l.Peer {
			l.Tables = append(l.Tables, k)
		}
	}
	sortKeys(l.Tables)
	l.Next = ci.Delivered.Stream + 1
	l.AckFloor = ci.AckFloor.Stream
}

func sortKeys(ks []storage.TableKey) {
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Database != ks[j].Database {
			return ks[i].Database < ks[j].Database
		}
		return ks[i].Table < ks[j].Table
	})
}
