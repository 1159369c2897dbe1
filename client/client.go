package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/nats-io/nats.go"
)

// DefaultTimeout bounds a request when the context has no earlier deadline.
// clusterd answers within 5 s (inter-node calls are bounded by the node's
// clustering.requestTimeout), so this leaves room for a slow network.
const DefaultTimeout = 10 * time.Second

// Subject prefixes, as in SPEC §2.
const (
	localPrefix = "ops.cluster."
	nodePrefix  = "ops.node."
)

// Client sends clustering operations to one clusterd node over NATS. It is
// safe for concurrent use; it holds no state besides its options and, with
// WithIssuerKey, the token it minted last.
type Client struct {
	nc      *nats.Conn
	node    string
	timeout time.Duration
	token   TokenSource
	// authorization is a fixed Authorization header (WithBasicAuth).
	authorization string
}

// TokenSource returns the bearer token to send with the next request. It is
// called once per request, so it may refresh tokens as they near expiry.
type TokenSource func(ctx context.Context) (string, error)

// Option configures a Client.
type Option func(*Client)

// New returns a client that sends requests on nc, a connection to a clusterd
// node's leaf client port (as the cluster user or a clustering.leafServer
// user). Without WithNode, requests go to ops.cluster.<operation> and are
// answered by the node nc is connected to.
func New(nc *nats.Conn, opts ...Option) *Client {
	c := &Client{nc: nc, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithNode addresses every request to node name through the mesh
// (ops.node.<name>.cluster.<operation>), whichever node nc is connected to.
func WithNode(name string) Option { return func(c *Client) { c.node = name } }

// WithTimeout bounds each request (DefaultTimeout when not set). A context
// deadline that comes earlier wins.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithToken sends a fixed token, e.g. one printed by `clusterd token`.
func WithToken(token string) Option {
	return func(c *Client) {
		c.token, c.authorization = func(context.Context) (string, error) { return token, nil }, ""
	}
}

// WithTokenSource asks src for the token of every request.
func WithTokenSource(src TokenSource) Option {
	return func(c *Client) { c.token, c.authorization = src, "" }
}

// WithIssuerKey mints tokens with key (an issuer key the nodes trust, e.g.
// the issuer.key a node keeps under its rootPath) for user and role, each
// valid for ttl (at most the nodes' auth.maxTokenTTL, 24 h by default: they
// refuse longer-lived tokens). A token is reused until less than a quarter of
// its lifetime is left, then replaced.
func WithIssuerKey(key ed25519.PrivateKey, user, role string, ttl time.Duration) Option {
	m := &minter{ttl: ttl, now: time.Now, mint: func() (string, error) { return auth.Mint(key, user, role, ttl) }}
	return WithTokenSource(m.token)
}

// minter caches the token it minted until it nears expiry.
type minter struct {
	ttl  time.Duration
	now  func() time.Time
	mint func() (string, error)

	mu      sync.Mutex
	current string
	renewAt time.Time
}

func (m *minter) token(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.current != "" && now.Before(m.renewAt) {
		return m.current, nil
	}
	tok, err := m.mint()
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	m.current, m.renewAt = tok, now.Add(m.ttl*3/4)
	return tok, nil
}

// OnNode returns a copy of c that addresses node name (see WithNode); it
// shares c's connection and token source.
func (c *Client) OnNode(name string) *Client {
	cp := *c
	cp.node = name
	return &cp
}

// Node is the node c addresses, or "" for the node its connection reaches.
func (c *Client) Node() string { return c.node }

// Conn is the connection c sends on.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Subject is the subject c sends operation op on.
func (c *Client) Subject(op string) string {
	if c.node != "" {
		return nodePrefix + c.node + ".cluster." + op
	}
	return localPrefix + op
}

// Error is a clusterd error reply: the status from the Nats-Service-Error-Code
// header (HTTP-style: 400, 401, 403, 404, 500, 503, 504) and the JSON body,
// whose "error" is Message. Match it with errors.As.
type Error struct {
	// Op is the operation that was refused.
	Op string
	// Status is the HTTP-style status.
	Status int
	// Message is the body's "error" text, HarperDB's wording.
	Message string
	// Body is the whole JSON body: 403 adds "unauthorized_access" and
	// "invalid_schema_items"; a failed configure_cluster adds "failed_nodes".
	Body map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("clusterd %s: %d %s", e.Op, e.Status, e.Message)
}

// StatusOf returns the status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// strictReplies makes Call refuse reply fields the reply type does not know
// (tests switch it on to keep the types in step with the wire).
var strictReplies = false

// Call sends operation op with req (marshalled to JSON; nil sends {}) and
// decodes the reply into reply (nil discards it). Error replies come back as
// *Error; transport failures (nats.ErrNoResponders, nats.ErrTimeout,
// context errors) are wrapped, so errors.Is finds them. The typed methods are
// built on Call; use it for operations this package does not know.
func (c *Client) Call(ctx context.Context, op string, req, reply any) error {
	body := []byte("{}")
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("clusterd %s: encode request: %w", op, err)
		}
		body = b
	}
	msg := nats.NewMsg(c.Subject(op))
	msg.Data = body
	if c.authorization != "" {
		msg.Header.Set("Authorization", c.authorization)
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return fmt.Errorf("clusterd %s: token: %w", op, err)
		}
		if tok != "" {
			msg.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return fmt.Errorf("clusterd %s on %s: %w", op, msg.Subject, err)
	}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		return errorOf(op, code, resp)
	}
	if reply == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(resp.Data))
	if strictReplies {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(reply); err != nil {
		return fmt.Errorf("clusterd %s: decode reply %q: %w", op, truncate(resp.Data), err)
	}
	return nil
}

func errorOf(op, code string, resp *nats.Msg) *Error {
	e := &Error{Op: op, Message: resp.Header.Get("Nats-Service-Error")}
	e.Status, _ = strconv.Atoi(code)
	if json.Unmarshal(resp.Data, &e.Body) == nil {
		if m, ok := e.Body["error"].(string); ok {
			e.Message = m
		}
	}
	if e.Message == "" {
		e.Message = truncate(resp.Data)
	}
	return e
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
