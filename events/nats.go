package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Subject prefixes of operation requests.
const (
	LocalPrefix = "ops.cluster."
	NodePrefix  = "ops.node."
)

// NodeSubject is the mesh-wide subject that reaches node's operation op.
func NodeSubject(node, op string) string { return NodePrefix + node + ".cluster." + op }

// NATSIngress serves operations on NATS: one micro endpoint per operation on
// ops.cluster.<op> (node-local), a catch-all that answers unknown operations,
// and ops.node.<name>.cluster.<op> for callers anywhere in the mesh.
//
// The catch-all's subscription (ops.cluster.*) also matches every served
// operation, so on the endpoints' own connection each request would be
// delivered twice: the second copy parsed and its goroutine woken only to be
// ignored, which cost a read at 32 requesters more than its handler did. It
// therefore subscribes on a connection the server filters the served names
// out of (topology.Servers.UnservedOpsConn).
type NATSIngress struct {
	d        *Dispatcher
	node     string
	version  string
	stats    map[string]*endpointStats
	mu       sync.Mutex
	services []micro.Service
	subs     []*nats.Subscription
}

// ServiceName is the micro service name `nats micro ls` shows.
const ServiceName = "clusterd"

// StartNATSIngress registers the service on nc, the catch-all for unknown
// operations on unserved (nc when nil; served operations reaching it are
// ignored either way), and the node-addressed subjects on nc.
func StartNATSIngress(nc, unserved *nats.Conn, d *Dispatcher, nodeName, version string) (*NATSIngress, error) {
	in := &NATSIngress{d: d, node: nodeName, version: version, stats: map[string]*endpointStats{}}
	for name := range d.Operations() {
		in.stats[name] = &endpointStats{}
	}
	if err := in.ServeLocal(nc, unserved); err != nil {
		return nil, err
	}
	nodePrefix := NodePrefix + nodeName + ".cluster."
	addressed, err := nc.QueueSubscribe(nodePrefix+"*", "clusterd", func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		op := strings.TrimPrefix(m.Subject, nodePrefix)
		d.Dispatch(requestOf(op, m.Data, headerGetter(m)), in.stats[op].counted(msgResponder(m)))
	})
	if err != nil {
		in.Stop()
		return nil, err
	}
	in.mu.Lock()
	in.subs = append(in.subs, addressed)
	in.mu.Unlock()
	return in, nc.Flush()
}

// ServeLocal serves the node-local operations (ops.cluster.*) and the micro
// protocol ($SRV.*) on nc's account too: one micro service per account,
// sharing the node's endpoint statistics, with the catch-all for unknown
// operations on unserved (nc when nil). Serving inside an app's account
// rather than through a service import saves the import's per-request
// response mapping (docs/security.md has the measurement).
func (in *NATSIngress) ServeLocal(nc, unserved *nats.Conn) error {
	if unserved == nil {
		unserved = nc
	}
	d := in.d
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     in.version,
		Description: "clusterd clustering operations for node " + in.node,
		Metadata:    map[string]string{"node": in.node},
		StatsHandler: func(e *micro.Endpoint) any {
			if s := in.stats[e.Name]; s != nil {
				return s.data()
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("register micro service: %w", err)
	}
	for name := range d.Operations() {
		op := name
		err := svc.AddEndpoint(op, micro.HandlerFunc(func(r micro.Request) {
			// The reply is sent later, from the router: micro.Request's
			// Respond/Error must not be used after the handler returns (micro
			// reads the request's error right then, unsynchronized), so reply
			// on the connection directly. micro's endpoint stats therefore
			// count requests but not errors; the endpoint's data does.
			d.Dispatch(requestOf(op, r.Data(), r.Headers().Get), in.stats[op].counted(replyOn(nc, r.Reply())))
		}), micro.WithEndpointSubject(LocalPrefix+op), micro.WithEndpointMetadata(map[string]string{"operation": op}))
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("add endpoint %s: %w", op, err)
		}
	}
	known := d.Operations()
	unknown, err := unserved.Subscribe(LocalPrefix+"*", func(m *nats.Msg) {
		op := strings.TrimPrefix(m.Subject, LocalPrefix)
		if _, ok := known[op]; ok || m.Reply == "" {
			return // a micro endpoint answers it
		}
		d.Dispatch(requestOf(op, m.Data, headerGetter(m)), msgResponder(m))
	})
	if err != nil {
		_ = svc.Stop()
		return err
	}
	in.mu.Lock()
	in.services = append(in.services, svc)
	in.subs = append(in.subs, unknown)
	in.mu.Unlock()
	if err := unserved.Flush(); err != nil {
		return err
	}
	return nc.Flush()
}

// Stop stops intake; requests already dispatched are still answered.
func (in *NATSIngress) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.subs {
		_ = s.Unsubscribe()
	}
	for _, svc := range in.services {
		_ = svc.Stop()
	}
}

func headerGetter(m *nats.Msg) func(string) string {
	return func(k string) string {
		if m.Header == nil {
			return ""
		}
		return m.Header.Get(k)
	}
}

func requestOf(op string, data []byte, hdr func(string) string) Request {
	return Request{Op: op, Body: data, Authorization: hdr("Authorization"), RequestID: hdr("Nats-Request-Id")}
}

func errorText(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

func msgResponder(m *nats.Msg) Responder {
	return func(status int, body []byte) { _ = m.RespondMsg(replyMsg(m.Reply, status, body)) }
}

// replyOn answers on nc to the reply subject (when there is one).
func replyOn(nc *nats.Conn, reply string) Responder {
	return func(status int, body []byte) {
		if reply != "" {
			_ = nc.PublishMsg(replyMsg(reply, status, body))
		}
	}
}

// replyMsg is a reply with the micro protocol's error headers when status
// is not 200.
func replyMsg(reply string, status int, body []byte) *nats.Msg {
	out := &nats.Msg{Subject: reply, Data: body}
	if status != 200 {
		out.Header = nats.Header{}
		out.Header.Set(micro.ErrorHeader, errorText(body))
		out.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(status))
	}
	return out
}
