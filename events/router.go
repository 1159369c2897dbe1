package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/clusterd/clusterd/auth"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"
)

// Operation is one clustering operation as the router runs it.
type Operation struct {
	Name string // wire name, e.g. cluster_get_routes
	// Handler is HarperDB's handler name, used in 403 bodies (e.g. getRoutes).
	Handler string
	// Mutating operations are logged at info; reads at debug.
	Mutating bool
	// Access says who may run it: super_user (the default), any
	// authenticated user, or anyone (the token operations check credentials
	// themselves).
	Access Access
	// Deadline, when set, bounds the operation: its context ends that long
	// after it starts, so every wait inside it (locks, peers, retries) ends
	// in time for a reply within the caller's own timeout.
	Deadline time.Duration
	// Run executes the operation for an authorized caller. body is the raw
	// JSON request; the returned value is marshalled as the reply.
	Run func(ctx context.Context, caller Caller, body []byte) (any, error)
}

// Access is who may run an operation.
type Access int

const (
	// SuperUserOnly: a caller whose role grants super_user (403 otherwise).
	SuperUserOnly Access = iota
	// AnyUser: any authenticated caller (user_info).
	AnyUser
	// Public: no credentials needed (create_authentication_tokens,
	// refresh_operation_token); a caller, when there is one, is not checked.
	Public
)

// Request is one operation request as a transport adapter received it.
type Request struct {
	Op            string
	Body          []byte
	Authorization string
	RequestID     string
	// ClientCertUser is the user a verified TLS client certificate names
	// (HTTPS with operationsApi.network.mtls); the Authorization header,
	// when present, takes precedence.
	ClientCertUser string
}

// Responder delivers a reply to the transport the request came from. It is
// called exactly once per request.
type Responder func(status int, body []byte)

const topicOps = "ops"

type exchangeKey struct{}

type exchange struct {
	req     Request
	respond Responder
	status  int
	body    []byte
	caller  Caller
	op      *Operation
}

// Dispatcher feeds requests into a Watermill router and answers them.
type Dispatcher struct {
	ops     map[string]*Operation
	auth    Authenticator
	log     *zap.Logger
	metrics *Metrics
	router  *message.Router
	sub     *ingress

	mu      sync.RWMutex
	closing bool
}

// NewDispatcher builds the router; call Run to start it.
func NewDispatcher(ops []Operation, authn Authenticator, metrics *Metrics, log *zap.Logger) (*Dispatcher, error) {
	d := &Dispatcher{ops: map[string]*Operation{}, auth: authn, log: log, metrics: metrics, sub: newIngress()}
	for i := range ops {
		d.ops[ops[i].Name] = &ops[i]
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, zapAdapter{log.Named("watermill")})
	if err != nil {
		return nil, err
	}
	// First added runs outermost: the reply guard must see every outcome,
	// panics included, so it wraps the recoverer.
	r.AddMiddleware(d.replyMiddleware, middleware.Recoverer, d.requestIDMiddleware, d.metricsMiddleware, d.authMiddleware)
	r.AddConsumerHandler("operations", topicOps, d.sub, d.handle)
	d.router = r
	return d, nil
}

// Operations returns the registered operations by name.
func (d *Dispatcher) Operations() map[string]*Operation { return d.ops }

// Run runs the router until ctx ends or Close is called. It returns once the
// router is running or has failed to start.
func (d *Dispatcher) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- d.router.Run(ctx) }()
	select {
	case <-d.router.Running():
		return nil
	case err := <-errc:
		return err
	}
}

// Close stops taking requests and waits for in-flight ones to be answered.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	return d.router.Close()
}

// Dispatch hands a request to the router. It never blocks on the operation;
// respond is called when the reply is ready (or at once, when shutting down).
func (d *Dispatcher) Dispatch(req Request, respond Responder) {
	if req.RequestID == "" {
		req.RequestID = nuid.Next()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		respond(503, (&Error{Status: 503, Message: "Service is shutting down, retry on another node or later"}).Body())
		return
	}
	msg := message.NewMessage(req.RequestID, req.Body)
	msg.SetContext(context.WithValue(context.Background(), exchangeKey{}, &exchange{req: req, respond: respond}))
	d.sub.ch <- msg
}

// DispatchSync runs a request and waits for its reply (HTTP uses it).
func (d *Dispatcher) DispatchSync(ctx context.Context, req Request) (int, []byte) {
	type reply struct {
		status int
		body   []byte
	}
	ch := make(chan reply, 1)
	d.Dispatch(req, func(status int, body []byte) { ch <- reply{status, body} })
	select {
	case r := <-ch:
		return r.status, r.body
	case <-ctx.Done():
		return 504, (&Error{Status: 504, Message: "request cancelled before a reply was ready"}).Body()
	}
}

func exchangeOf(msg *message.Message) *exchange {
	return msg.Context().Value(exchangeKey{}).(*exchange)
}

func (d *Dispatcher) replyMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ex := exchangeOf(msg)
		_, err := h(msg)
		if err != nil {
			e := d.toError(ex, err)
			ex.status, ex.body = e.Status, e.Body()
		}
		ex.respond(ex.status, ex.body)
		return nil, nil
	}
}

func (d *Dispatcher) toError(ex *exchange, err error) *Error {
	var p middleware.RecoveredPanicError
	if errors.As(err, &p) {
		d.log.Error("operation panicked", zap.String("op", ex.req.Op), zap.String("request_id", ex.req.RequestID),
			zap.Any("panic", p.V), zap.String("stack", p.Stacktrace))
		return Errorf(500, "Internal error while running '%s' (request id %s); the node logged the details", ex.req.Op, ex.req.RequestID)
	}
	return AsError(err)
}

func (d *Dispatcher) requestIDMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		middleware.SetCorrelationID(exchangeOf(msg).req.RequestID, msg)
		return h(msg)
	}
}

func (d *Dispatcher) metricsMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ex := exchangeOf(msg)
		start := time.Now()
		out, err := h(msg)
		status := ex.status
		var msgText string
		if err != nil {
			e := AsError(err)
			status, msgText = e.Status, e.Message
			var p middleware.RecoveredPanicError
			if errors.As(err, &p) {
				status, msgText = 500, "panic"
			}
		}
		elapsed := time.Since(start)
		opLabel := ex.req.Op
		if _, ok := d.ops[opLabel]; !ok {
			opLabel = "unknown"
		}
		d.metrics.observeRequest(opLabel, status, elapsed)
		level, text := zap.DebugLevel, "operation done"
		switch {
		case status >= 500:
			level, text = zap.WarnLevel, "operation failed"
		case status >= 400:
			level, text = zap.InfoLevel, "operation refused"
		case ex.op != nil && ex.op.Mutating:
			level = zap.InfoLevel
		}
		// Fields are built only when the entry is written: reads log at
		// debug, and building them cost every read an allocation.
		if ce := d.log.Check(level, text); ce != nil {
			fields := []zap.Field{zap.String("op", ex.req.Op), zap.Int("status", status),
				zap.String("request_id", ex.req.RequestID), zap.String("user", ex.caller.User), zap.Duration("took", elapsed)}
			if status >= 400 {
				fields = append(fields, zap.String("error", msgText))
			}
			ce.Write(fields...)
		}
		return out, err
	}
}

// authMiddleware: 401 for missing or bad credentials (429 while a user's
// failed logins are slowed down), 400 for an unknown operation, 403 for a
// role without super_user on a super_user operation — in that order, before
// any validation. Public operations skip the credential check.
func (d *Dispatcher) authMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ex := exchangeOf(msg)
		op, known := d.ops[ex.req.Op]
		if known && op.Access == Public {
			// These operations check credentials themselves, from the body
			// or from the header.
			ex.op = op
			ctx := context.WithValue(msg.Context(), authorizationKey{}, ex.req.Authorization)
			msg.SetContext(context.WithValue(ctx, clientCertUserKey{}, ex.req.ClientCertUser))
			return h(msg)
		}
		caller, err := d.authenticate(ex.req)
		if err != nil {
			if r := (*auth.Refusal)(nil); errors.As(err, &r) {
				return nil, err
			}
			return nil, Wrap(500, err, "Unable to check credentials: "+err.Error())
		}
		ex.caller = caller
		if !known {
			return nil, Errorf(400, "Operation '%s' not found", ex.req.Op)
		}
		ex.op = op
		if op.Access == SuperUserOnly && !caller.Super {
			return nil, &Error{Status: 403,
				Message: "This operation is not authorized due to role restrictions and/or invalid database items",
				Extra: map[string]any{
					"unauthorized_access":  []string{fmt.Sprintf("Operation '%s' is restricted to 'super_user' roles", op.Handler)},
					"invalid_schema_items": []string{},
				},
				Order: []string{"unauthorized_access", "invalid_schema_items"},
			}
		}
		return h(msg)
	}
}

func (d *Dispatcher) handle(msg *message.Message) error {
	ex := exchangeOf(msg)
	if err := checkOperationField(msg.Payload, ex.req.Op); err != nil {
		return err
	}
	ctx := msg.Context()
	if ex.op.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ex.op.Deadline)
		defer cancel()
	}
	reply, err := ex.op.Run(ctx, ex.caller, msg.Payload)
	if err != nil {
		return err
	}
	b, err := MarshalJSON(reply)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	ex.status, ex.body = 200, b
	return nil
}

// checkOperationField enforces that a body's "operation", when present, names
// the operation the subject (or HTTP body) asked for. Non-object bodies are
// left to the operation's decoder, which reports them.
func checkOperationField(body []byte, op string) error {
	switch string(bytes.TrimSpace(body)) {
	case "", "{}": // most reads: nothing to check, no decoder needed
		return nil
	}
	var probe struct {
		Operation *json.RawMessage `json:"operation"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.Operation == nil {
		return nil
	}
	var s string
	if err := json.Unmarshal(*probe.Operation, &s); err != nil {
		return Errorf(400, "'operation' must be a string")
	}
	if s != op {
		return Errorf(400, "Operation in body '%s' does not match subject operation '%s'", s, op)
	}
	return nil
}

// ingress is the Watermill subscriber the transports feed. It never waits for
// acks: the router runs each message in its own goroutine and the reply, not
// the ack, is what the requester waits for.
type ingress struct {
	ch   chan *message.Message
	once sync.Once
}

func newIngress() *ingress { return &ingress{ch: make(chan *message.Message, 1024)} }

func (i *ingress) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != topicOps {
		return nil, fmt.Errorf("unknown topic %q", topic)
	}
	return i.ch, nil
}

// Close is called by the router after intake has stopped (Dispatcher.Close
// holds the write lock while setting closing, so no Dispatch is mid-send).
func (i *ingress) Close() error {
	i.once.Do(func() { close(i.ch) })
	return nil
}

type zapAdapter struct{ l *zap.Logger }

func fieldsOf(f watermill.LogFields) []zap.Field {
	out := make([]zap.Field, 0, len(f))
	for k, v := range f {
		out = append(out, zap.Any(k, v))
	}
	return out
}

func (a zapAdapter) Error(msg string, err error, f watermill.LogFields) {
	a.l.Error(msg, append(fieldsOf(f), zap.Error(err))...)
}
func (a zapAdapter) Info(msg string, f watermill.LogFields)  { a.l.Debug(msg, fieldsOf(f)...) }
func (a zapAdapter) Debug(msg string, f watermill.LogFields) {}
func (a zapAdapter) Trace(msg string, f watermill.LogFields) {}
func (a zapAdapter) With(f watermill.LogFields) watermill.LoggerAdapter {
	return zapAdapter{a.l.With(fieldsOf(f)...)}
}
