package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Inter-node calls travel on _clusterd.node.<name>.<call>. Only clusterd's
// internal NATS user may publish or subscribe there, and every call carries an
// HMAC over its content keyed by the cluster password, so a request from
// anything that is not a cluster member is refused even if it got onto the
// subject.
const peerPrefix = "_clusterd.node."

const (
	hdrFrom = "Clusterd-From"
	hdrTime = "Clusterd-Time"
	hdrSig  = "Clusterd-Signature"
	maxSkew = 2 * time.Minute
)

// Peer call failures, told apart so operations can say what happened.
var (
	ErrNotListening = errors.New("not listening")
	ErrNoResponse   = errors.New("listening but did not respond")
)

// RemoteError is an error the peer itself returned. Code, when set, is what
// a caller acts on (CodeUnknownCall, CodeBusy); Message is for people.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Codes of inter-node errors that callers act on.
const (
	// CodeUnknownCall: the peer does not serve the call (it runs an older
	// clusterd); the caller may fall back on older calls.
	CodeUnknownCall = "unknown_call"
	// CodeBusy: the peer applied nothing because it is changing the same
	// records itself; the caller may retry.
	CodeBusy = "busy"
)

// CodedError is an error a PeerHandler returns with a code for the caller.
type CodedError struct {
	Code    string
	Message string
}

func (e *CodedError) Error() string { return e.Message }

// HasCode says whether err is a peer's error with code.
func HasCode(err error, code string) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Code == code
}

type peerAuth struct{ key []byte }

func newPeerAuth(password string) peerAuth {
	k := sha256.Sum256([]byte("clusterd-peer-v1:" + password))
	return peerAuth{key: k[:]}
}

func (a peerAuth) sign(subject, from, ts string, body []byte) string {
	m := hmac.New(sha256.New, a.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n", subject, from, ts)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (a peerAuth) verify(msg *nats.Msg) (string, error) {
	if msg.Header == nil {
		return "", errors.New("unsigned inter-node request")
	}
	from, ts, sig := msg.Header.Get(hdrFrom), msg.Header.Get(hdrTime), msg.Header.Get(hdrSig)
	want := a.sign(msg.Subject, from, ts, msg.Data)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", errors.New("inter-node request is not signed by a cluster member")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", errors.New("inter-node request has a bad timestamp")
	}
	if d := time.Since(time.UnixMilli(n)); d > maxSkew || d < -maxSkew {
		return "", errors.New("inter-node request is too old (or clocks disagree by more than 2m)")
	}
	return from, nil
}

// PeerClient calls other nodes.
type PeerClient struct {
	nc      *nats.Conn
	self    string
	auth    peerAuth
	Timeout time.Duration
}

// NewPeerClient returns a client that signs calls as node self.
func NewPeerClient(nc *nats.Conn, self, password string, timeout time.Duration) *PeerClient {
	return &PeerClient{nc: nc, self: self, auth: newPeerAuth(password), Timeout: timeout}
}

// Call sends req to node's call and decodes the reply into resp. It fails with
// ErrNotListening, ErrNoResponse or a *RemoteError.
func (c *PeerClient) Call(ctx context.Context, node, call string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	subject := peerPrefix + node + "." + call
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	// Right after routes come up, a peer's subscription may not have
	// propagated yet: "no responders" is retried for a quarter of the
	// timeout before the peer is declared not listening.
	noRespondersUntil := time.Now().Add(c.Timeout / 4)
	var out *nats.Msg
	for {
		out, err = c.nc.RequestMsgWithContext(ctx, c.signed(subject, body))
		if errors.Is(err, nats.ErrNoResponders) && time.Now().Before(noRespondersUntil) {
			select {
			case <-time.After(25 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
		}
		break
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrNotListening
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return ErrNoResponse
	case err != nil:
		return fmt.Errorf("call %s on %s: %w", call, node, err)
	}
	var env struct {
		Error  *string         `json:"error"`
		Code   string          `json:"code"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(out.Data, &env); err != nil {
		return DecodeError(fmt.Sprintf("call %s on %s: bad reply", call, node), err)
	}
	if env.Error != nil {
		return remoteError(env.Code, *env.Error)
	}
	if resp == nil {
		return nil
	}
	return DecodeError(fmt.Sprintf("call %s on %s: bad reply", call, node), json.Unmarshal(env.Result, resp))
}

// Notify sends req to node's call without waiting for an answer (the
// handler's reply is dropped): for confirmations whose loss is harmless,
// where a reply would only cost the mesh another round trip.
func (c *PeerClient) Notify(node, call string, req any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.nc.PublishMsg(c.signed(peerPrefix+node+"."+call, body))
}

// signed is a message on subject from this node, timestamped and signed.
func (c *PeerClient) signed(subject string, body []byte) *nats.Msg {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(hdrFrom, c.self)
	msg.Header.Set(hdrTime, ts)
	msg.Header.Set(hdrSig, c.auth.sign(subject, c.self, ts, body))
	return msg
}

// UnknownCall begins the error a node answers a call it does not serve with
// (one added in a later version), coded CodeUnknownCall.
const UnknownCall = "unknown inter-node call"

// remoteError builds a peer's error. Peers from before error codes sent the
// unknown-call error as text only: that one text is given its code here, at
// the transport's edge, so callers only ever look at codes.
func remoteError(code, msg string) *RemoteError {
	if code == "" && strings.HasPrefix(msg, UnknownCall) {
		code = CodeUnknownCall
	}
	return &RemoteError{Code: code, Message: msg}
}

// maxPeerCalls bounds the inter-node calls a node serves at once; more wait
// in their subscription's queue (the callers' timeouts bound the wait).
const maxPeerCalls = 1024

// PeerHandler serves one inter-node call from node `from`.
type PeerHandler func(ctx context.Context, from string, body []byte) (any, error)

// PeerServer answers inter-node calls addressed to this node, and the
// broadcast calls every node answers. It serves at most maxPeerCalls at
// once, under a context that Stop cancels, and Stop waits for them.
type PeerServer struct {
	subs   []*nats.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{}

	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup
}

// begin takes a slot for one call, waiting while maxPeerCalls run; false
// once Stop was called.
func (p *PeerServer) begin() bool {
	select {
	case p.slots <- struct{}{}:
	case <-p.ctx.Done():
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		<-p.slots
		return false
	}
	p.inflight.Add(1)
	return true
}

func (p *PeerServer) end() {
	<-p.slots
	p.inflight.Done()
}

// StartPeerServer subscribes to this node's inter-node subject and to the
// mesh-wide broadcast subject. Each call runs in its own goroutine so a slow
// one does not hold up the rest. Replies to broadcasts name the answering
// node.
func StartPeerServer(nc *nats.Conn, self, password string, handlers map[string]PeerHandler, log *zap.Logger) (*PeerServer, error) {
	auth := newPeerAuth(password)
	ps := &PeerServer{slots: make(chan struct{}, maxPeerCalls)}
	ps.ctx, ps.cancel = context.WithCancel(context.Background())
	serve := func(prefix string, broadcast bool) nats.MsgHandler {
		return func(m *nats.Msg) {
			if !ps.begin() {
				return
			}
			go func() {
				defer ps.end()
				reply := func(v any, err error) {
					if m.Reply == "" {
						return // a notification (Notify)
					}
					env := map[string]any{"result": v}
					if err != nil {
						env = map[string]any{"error": err.Error()}
						var ce *CodedError
						if errors.As(err, &ce) {
							env["code"] = ce.Code
						}
					}
					if broadcast {
						env["node"] = self
					}
					b, _ := json.Marshal(env)
					_ = m.Respond(b)
				}
				from, err := auth.verify(m)
				if err != nil {
					log.Warn("refused inter-node request", zap.String("subject", m.Subject), zap.Error(err))
					reply(nil, err)
					return
				}
				call := strings.TrimPrefix(m.Subject, prefix)
				h, ok := handlers[call]
				if !ok {
					reply(nil, &CodedError{Code: CodeUnknownCall, Message: fmt.Sprintf("%s %q", UnknownCall, call)})
					return
				}
				v, err := h(ps.ctx, from, m.Data)
				if err != nil {
					log.Warn("inter-node call failed", zap.String("call", call), zap.String("peer", from), zap.Error(err))
				}
				reply(v, err)
			}()
		}
	}
	prefix := peerPrefix + self + "."
	sub, err := nc.QueueSubscribe(prefix+"*", "clusterd", serve(prefix, false))
	if err != nil {
		ps.cancel()
		return nil, err
	}
	// Not a queue subscription: a broadcast is for every node.
	all, err := nc.Subscribe(broadcastPrefix+"*", serve(broadcastPrefix, true))
	if err != nil {
		_ = sub.Unsubscribe()
		ps.cancel()
		return nil, err
	}
	ps.subs = []*nats.Subscription{sub, all}
	return ps, nc.Flush()
}

// Stop stops taking calls, cancels the context of those in flight and waits
// for them to finish.
func (p *PeerServer) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
	p.cancel()
	p.inflight.Wait()
}

// Announcements are signed one-way broadcasts to every node (e.g. "I have
// restarted"), on _clusterd.announce.<kind>.<from>.
const announcePrefix = "_clusterd.announce."

// Announce broadcasts kind from this node with a small body.
func (c *PeerClient) Announce(kind string, body []byte) error {
	return c.nc.PublishMsg(c.signed(announcePrefix+kind+"."+c.self, body))
}

// ListenAnnouncements calls fn for every verified announcement of kind from
// another node.
func ListenAnnouncements(nc *nats.Conn, self, password, kind string, fn func(from string, body []byte), log *zap.Logger) (*nats.Subscription, error) {
	auth := newPeerAuth(password)
	return nc.Subscribe(announcePrefix+kind+".*", func(m *nats.Msg) {
		from, err := auth.verify(m)
		if err != nil {
			log.Warn("refused announcement", zap.String("subject", m.Subject), zap.Error(err))
			return
		}
		if from != self && strings.HasSuffix(m.Subject, "."+from) {
			fn(from, m.Data)
		}
	})
}

// broadcastPrefix is the subject prefix of calls every node in the mesh
// answers (_clusterd.all.<call>). Like node calls, they are signed and only
// clusterd's internal user may use the subjects.
const broadcastPrefix = "_clusterd.all."

// PeerReply is one node's answer to a broadcast call.
type PeerReply struct {
	Node    string
	Elapsed time.Duration // from sending the call to receiving this reply
	Result  json.RawMessage
	Err     error // a *RemoteError when the node refused or failed the call
}

// Broadcast sends call to every node in the mesh, this one included, and
// hands each reply to onReply until onReply returns true (done), ctx ends or
// wait passes. Nodes reachable by more than one path may answer twice;
// callers deduplicate by PeerReply.Node. Running out of time is not an error:
// the replies received so far are what the mesh answered.
func (c *PeerClient) Broadcast(ctx context.Context, call string, req any, wait time.Duration, onReply func(PeerReply) (done bool)) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("broadcast %s: %w", call, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := c.signed(broadcastPrefix+call, body)
	msg.Reply = inbox
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	if err := c.nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("broadcast %s: %w", call, err)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("broadcast %s: %w", call, err)
		}
		var env struct {
			Node   string          `json:"node"`
			Error  *string         `json:"error"`
			Code   string          `json:"code"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(m.Data, &env) != nil || env.Node == "" {
			continue // not a clusterd reply
		}
		r := PeerReply{Node: env.Node, Elapsed: time.Since(start), Result: env.Result}
		if env.Error != nil {
			r.Err = remoteError(env.Code, *env.Error)
		}
		if onReply(r) {
			return nil
		}
	}
}
