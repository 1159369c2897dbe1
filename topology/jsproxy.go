package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ConsumerProxy serves an app account's consumer create and delete requests
// on the transaction stream, which the account does not import: nats-server
// would accept any consumer there, and a push consumer delivers to whatever
// subject its creator names, in clusterd's account (an inter-node subject
// included); deleting or replacing a consumer would break whoever reads
// through it (a peer's source, another service).
//
// The proxy runs on a clusterd connection inside the app account, so the
// requester's account is known without trusting anything the request says.
// A consumer it makes is granted to the account (ConsumerGrants): only then
// can the account pull from it and acknowledge it.
// It allows pull consumers only, records the owning account in the
// consumer's metadata (OwnerKey), creates with JetStream's "create" action
// when the consumer does not exist yet (so a consumer made meanwhile by
// someone else is never taken over), and lets an account update or delete
// only the consumers it owns. Consumers clusterd or peers make carry no
// owner and are out of every app's reach.
type ConsumerProxy struct {
	subs []*nats.Subscription
}

// OwnerKey is the consumer metadata key naming the app account that made it.
const OwnerKey = "clusterd_owner"

const jsAPI = "$JS.API."

// StartConsumerProxy serves account's consumer requests, arriving on app (a
// connection inside that account), by forwarding the allowed ones to
// JetStream on internal (a connection in ClusterdAccount).
func StartConsumerProxy(app, internal *nats.Conn, account string, grants *ConsumerGrants, timeout time.Duration, log *zap.Logger) (*ConsumerProxy, error) {
	p := &ConsumerProxy{}
	pre := jsAPI + "CONSUMER."
	handlers := map[string]func(*nats.Msg) ([]byte, error){}
	forward := func(subject string, body []byte) ([]byte, error) {
		r, err := internal.Request(subject, body, timeout)
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}
	owner := func(name string) (exists bool, own string, err error) {
		r, err := internal.Request(pre+"INFO."+TxnStreamName+"."+name, nil, timeout)
		if err != nil {
			return false, "", err
		}
		var info struct {
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
			Config struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"config"`
		}
		if err := json.Unmarshal(r.Data, &info); err != nil {
			return false, "", err
		}
		if info.Error != nil {
			if info.Error.Code == 404 {
				return false, "", nil
			}
			return false, "", fmt.Errorf("consumer info: %s", r.Data)
		}
		return true, info.Config.Metadata[OwnerKey], nil
	}
	create := func(m *nats.Msg, name string) ([]byte, error) {
		var req map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return jsError("consumer_create", 400, 10025, "bad request: "+err.Error()), nil
		}
		var cfg map[string]any
		dec := json.NewDecoder(bytes.NewReader(req["config"]))
		dec.UseNumber() // durations and sequences stay exact
		if err := dec.Decode(&cfg); err != nil || cfg == nil {
			return jsError("consumer_create", 400, 10025, "bad request: config is required"), nil
		}
		if ds, _ := cfg["deliver_subject"].(string); ds != "" {
			return jsError("consumer_create", 403, 10000, "push consumers are not allowed on the transaction stream: use a pull consumer"), nil
		}
		if d, _ := cfg["direct"].(bool); d {
			return jsError("consumer_create", 403, 10000, "direct consumers are not allowed"), nil
		}
		if name == "" {
			name, _ = cfg["durable_name"].(string)
		}
		if name == "" {
			name, _ = cfg["name"].(string)
		}
		md, _ := cfg["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
		}
		md[OwnerKey] = account
		cfg["metadata"] = md
		if name != "" && grants.Owner(name) != "" && grants.Owner(name) != account {
			return jsError("consumer_create", 403, 10000, fmt.Sprintf("consumer name %q is in use by another account", name)), nil
		}
		if name != "" {
			exists, own, err := owner(name)
			if err != nil {
				return nil, err
			}
			switch {
			case !exists:
				// Fails if it came into being since: never an update of
				// someone else's consumer.
				req["action"] = json.RawMessage(`"create"`)
			case own != account:
				return jsError("consumer_create", 403, 10000, fmt.Sprintf("consumer %q belongs to another account", name)), nil
			}
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		req["config"] = b
		body, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		out, err := forward(m.Subject, body)
		if err != nil {
			return nil, err
		}
		// Made: the account may now pull from it and acknowledge it, before
		// it hears so.
		var made struct {
			Error *json.RawMessage `json:"error"`
			Name  string           `json:"name"`
		}
		if json.Unmarshal(out, &made) == nil && made.Error == nil && made.Name != "" {
			if err := grants.Grant(account, made.Name); err != nil {
				_, _ = internal.Request(pre+"DELETE."+TxnStreamName+"."+made.Name, nil, timeout)
				return jsError("consumer_create", 400, 10000, err.Error()), nil
			}
		}
		return out, nil
	}
	handlers[pre+"CREATE."+TxnStreamName] = func(m *nats.Msg) ([]byte, error) { return create(m, "") }
	handlers[pre+"CREATE."+TxnStreamName+".>"] = func(m *nats.Msg) ([]byte, error) {
		rest := strings.TrimPrefix(m.Subject, pre+"CREATE."+TxnStreamName+".")
		name, _, _ := strings.Cut(rest, ".")
		return create(m, name)
	}
	handlers[pre+"DURABLE.CREATE."+TxnStreamName+".*"] = func(m *nats.Msg) ([]byte, error) {
		return create(m, strings.TrimPrefix(m.Subject, pre+"DURABLE.CREATE."+TxnStreamName+"."))
	}
	handlers[pre+"DELETE."+TxnStreamName+".*"] = func(m *nats.Msg) ([]byte, error) {
		name := strings.TrimPrefix(m.Subject, pre+"DELETE."+TxnStreamName+".")
		exists, own, err := owner(name)
		if err != nil {
			return nil, err
		}
		switch {
		case !exists:
			// Also what a stream's hidden source consumers read as: never
			// forwarded.
			return jsError("consumer_delete", 404, 10014, "consumer not found"), nil
		case own != account:
			return jsError("consumer_delete", 403, 10000, fmt.Sprintf("consumer %q belongs to another account", name)), nil
		}
		return forward(m.Subject, nil)
	}
	for subject, h := range handlers {
		h := h
		sub, err := app.Subscribe(subject, func(m *nats.Msg) {
			if m.Reply == "" {
				return
			}
			go func() {
				out, err := h(m)
				if err != nil {
					log.Warn("consumer proxy", zap.String("account", account), zap.String("subject", m.Subject), zap.Error(err))
					kind := "consumer_create"
					if strings.Contains(m.Subject, ".DELETE.") {
						kind = "consumer_delete"
					}
					code := 500
					if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
						code = 503
					}
					out = jsError(kind, code, 10000, "clusterd could not reach JetStream: "+err.Error())
				}
				_ = m.Respond(out)
			}()
		})
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.subs = append(p.subs, sub)
	}
	return p, app.Flush()
}

// jsError is a JetStream API error reply of the given kind.
func jsError(kind string, code, errCode int, desc string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":  "io.nats.jetstream.api.v1." + kind + "_response",
		"error": map[string]any{"code": code, "err_code": errCode, "description": desc},
	})
	return b
}

// Stop stops serving.
func (p *ConsumerProxy) Stop() {
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
}

// GrantOwned grants every consumer of the transaction stream that an app
// account made (OwnerKey) back to that account: after a restart, its
// durable consumers are its own again.
func GrantOwned(ctx context.Context, js jetstream.JetStream, grants *ConsumerGrants, log *zap.Logger) error {
	s, err := js.Stream(ctx, TxnStreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		if acc := info.Config.Metadata[OwnerKey]; acc != "" {
			if err := grants.Grant(acc, info.Name); err != nil {
				log.Warn("consumer not granted back to its account", zap.String("consumer", info.Name), zap.String("account", acc), zap.Error(err))
			}
		}
	}
	return list.Err()
}
