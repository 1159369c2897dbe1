// Package bench measures clusterd against the floor the hardware and NATS
// set: in one run it first measures the floors (raw NATS request/reply, a
// synced Badger write, a JetStream publish, a bare JetStream source across a
// leafnode link, bare servers' memory) and then clusterd doing the same
// work, and reports every figure as an absolute and as a ratio to its floor.
// cmd/clusterbench is its command line.
package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
)

// Options configure a run.
type Options struct {
	// Quick runs every scenario small: it proves the harness works, the
	// figures mean little.
	Quick bool
	// Clusterd is the clusterd binary for the process scenarios (memory,
	// kill -9); empty builds ./cmd/clusterd from the module.
	Clusterd string
	// Command is recorded in the report.
	Command string
	// Only, when not empty, runs just these steps (see Steps); the other
	// figures stay n/a. For profiling one scenario.
	Only []string
	// Log receives progress lines.
	Log io.Writer
}

// Steps names the steps of a run, in order (for Options.Only).
func Steps() []string {
	var out []string
	for _, s := range (&runner{}).steps() {
		out = append(out, s.key)
	}
	return out
}

type step struct {
	key, name string
	run       func() error
}

func (r *runner) steps() []step {
	return []step{
		{"echo", "floor: NATS echo", r.floorEcho},
		{"badger", "floor: synced Badger write", r.floorBadger},
		{"mesh-floor", "floor: echo across two nodes' servers", r.floorMeshEcho},
		{"publish", "floor: JetStream publish", r.floorPublish},
		{"source", "floor: bare JetStream source across a leafnode link", r.floorSource},
		{"route-floor", "floor: bare route", r.floorRoute},
		{"rss-floor", "floor: bare servers' memory", r.floorRSS},
		{"trio", "clusterd: three nodes (replication, subscriptions, rejected requests, reads, cluster_status, mutations)", r.clusterdTrio},
		{"routes", "clusterd: route convergence", r.clusterdRoutes},
		{"procs", "clusterd: processes (memory, kill -9 restart)", r.clusterdProcs},
		{"mesh", "clusterd: 5-node full mesh", r.clusterdMesh},
		{"scale", "clusterd: full meshes of real processes (many nodes; many tables)", r.clusterdScale},
	}
}

// sizes are the bounds of every scenario.
type sizes struct {
	warm         time.Duration // warm-up before a timed load
	reqCount     int           // sequential requests for single-requester latency
	loadDur      time.Duration // timed concurrent load
	syncWrites   int
	pubCount     int // sequential JetStream publishes
	bulk         int // messages for throughput
	startTrials  int // source start / subscription convergence trials
	bigTrials    int // the same with streams holding the bulk
	latSamples   int // steady replication latency samples
	routeTrials  int
	mutateCount  int // sequential mutating ops
	statusCount  int
	rejected     int        // rejected requests of each kind
	tables       int        // tables per node in the process and mesh scenarios
	meshes       []meshSize // the scale step's full meshes
	scaleCalls   int        // cluster_status / cluster_network calls at each mesh size
	settle       time.Duration
	tableClients int // clients for the 64-client mutating load
	// requestTimeout is the nodes' clustering.requestTimeout: the default
	// (2s) for measurements; longer in quick mode, which CI runs under the
	// race detector on a busy machine and must not flake.
	requestTimeout time.Duration
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{warm: 50 * time.Millisecond, reqCount: 100, loadDur: 200 * time.Millisecond, syncWrites: 30,
			pubCount: 100, bulk: 2000, startTrials: 2, bigTrials: 1, latSamples: 20, routeTrials: 2, mutateCount: 20, statusCount: 20,
			rejected: 5, tables: 20, settle: 300 * time.Millisecond, tableClients: 64, requestTimeout: 15 * time.Second,
			meshes: []meshSize{{key: "wide", nodes: 3, tables: 10}, {key: "deep", nodes: 2, tables: 300}}, scaleCalls: 2}
	}
	return sizes{warm: 300 * time.Millisecond, reqCount: 5000, loadDur: 3 * time.Second, syncWrites: 1000,
		pubCount: 3000, bulk: 50000, startTrials: 21, bigTrials: 5, latSamples: 500, routeTrials: 11, mutateCount: 300, statusCount: 300,
		rejected: 100, tables: 1000, settle: 2 * time.Second, tableClients: 64, requestTimeout: 2 * time.Second,
		meshes: []meshSize{{key: "wide", nodes: 20, tables: 100}, {key: "deep", nodes: 10, tables: 2000}}, scaleCalls: 11}
}

// runner carries one run's state.
type runner struct {
	opts   Options
	sz     sizes
	dir    string
	report *Report
	log    io.Writer
	ctx    context.Context
	// token is a realistic Authorization header value for floors that carry
	// the same bytes as clusterd requests.
	token string
}

// Run measures the floors, then clusterd, and returns the report. A scenario
// that fails is recorded in Report.Failures and its figures stay n/a; the
// other scenarios still run.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tok, err := auth.Mint(key, "admin", events.SuperUser, time.Hour)
	if err != nil {
		return nil, err
	}
	r := &runner{opts: o, sz: sizesFor(o.Quick), dir: dir, log: o.Log, ctx: ctx, token: tok,
		report: &Report{Command: o.Command, Quick: o.Quick, Started: time.Now(), Machine: machine(), Figures: catalogue()}}
	start := time.Now()
	only := map[string]bool{}
	for _, k := range o.Only {
		only[k] = true
	}
	for _, s := range r.steps() {
		if len(only) > 0 && !only[s.key] {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Each step starts on a collected heap, not on the garbage of the
		// previous one (the floors leave ~100 MB behind).
		runtime.GC()
		debug.FreeOSMemory()
		t0 := time.Now()
		r.logf("== %s", s.name)
		if err := s.run(); err != nil {
			r.logf("   FAILED: %v", err)
			r.report.Failures = append(r.report.Failures, s.name+": "+err.Error())
		}
		r.logf("   (%v)", time.Since(t0).Round(time.Millisecond))
	}
	r.report.Took = time.Since(start).Round(time.Millisecond).String()
	r.report.Machine.LoadAfter = loadAvg()
	r.report.finish()
	return r.report, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, format+"\n", args...)
}

// set records a figure's value (and a note, if any).
func (r *runner) set(id string, v float64, note ...string) {
	for _, f := range r.report.Figures {
		if f.ID == id {
			f.Value = ptr(v)
			if len(note) > 0 {
				f.Note = strings.Join(note, " ")
			}
			r.logf("   %-28s %s %s", id, fmtNum(v), f.Unit)
			return
		}
	}
	panic("bench: unknown figure " + id)
}

// note attaches a note to a figure.
func (r *runner) note(id, text string) {
	for _, f := range r.report.Figures {
		if f.ID == id {
			f.Note = text
			return
		}
	}
	panic("bench: unknown figure " + id)
}

// FigureIDs lists every figure a run reports, in order.
func FigureIDs() []string {
	var out []string
	for _, f := range catalogue() {
		out = append(out, f.ID)
	}
	return out
}
