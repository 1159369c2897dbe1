package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The origin side of lanes: requests to a peer's JetStream API through
// $JS.<peer>.API, made directly (the jetstream package refuses to hand out
// push consumers).

// errLaneGone is a lane whose consumer (or the whole stream) is not on the
// origin any more.
var errLaneGone = errors.New("lane consumer not found on the origin")

type consumerResponse struct {
	Error *jetstream.APIError `json:"error"`
	jetstream.ConsumerInfo
}

// ConsumerInfo reads a lane's consumer on peer. It waits at most a second:
// every pass asks, and a peer that is down must not hold the pass (whose
// length paces the next one) for long.
func (t *TxnStream) ConsumerInfo(ctx context.Context, peer, name string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var r consumerResponse
	if err := t.apiRequest(ctx, apiPrefix(peer)+".CONSUMER.INFO."+TxnStreamName+"."+name, nil, &r); err != nil {
		return nil, err
	}
	return consumerResult(peer, &r)
}

func consumerResult(peer string, r *consumerResponse) (*jetstream.ConsumerInfo, error) {
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeConsumerNotFound || r.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound {
			return nil, errLaneGone
		}
		return nil, fmt.Errorf("peer %s: %s (%d)", peer, r.Error.Description, r.Error.ErrorCode)
	}
	return &r.ConsumerInfo, nil
}

// PutConsumer creates (create) or updates a lane's consumer on peer and
// returns its info right after the change.
func (t *TxnStream) PutConsumer(ctx context.Context, peer string, cfg jetstream.ConsumerConfig, create bool) (*jetstream.ConsumerInfo, error) {
	action := "update"
	if create {
		action = "create"
	}
	body, err := json.Marshal(map[string]any{"stream_name": TxnStreamName, "config": cfg, "action": action})
	if err != nil {
		return nil, err
	}
	var r consumerResponse
	if err := t.apiRequest(ctx, apiPrefix(peer)+".CONSUMER.CREATE."+TxnStreamName+"."+cfg.Durable, body, &r); err != nil {
		return nil, err
	}
	return consumerResult(peer, &r)
}

// PauseConsumer pauses a lane's consumer on peer until the given time, or
// resumes it (zero time). A consumer's update never changes its pause:
// nats-server takes that only from this request.
func (t *TxnStream) PauseConsumer(ctx context.Context, peer, name string, until time.Time) error {
	body := []byte("{}")
	if !until.IsZero() {
		body, _ = json.Marshal(map[string]any{"pause_until": until.UTC()})
	}
	var r struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := t.apiRequest(ctx, apiPrefix(peer)+".CONSUMER.PAUSE."+TxnStreamName+"."+name, body, &r); err != nil {
		return err
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeConsumerNotFound || r.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound {
			return errLaneGone
		}
		return fmt.Errorf("peer %s: %s", peer, r.Error.Description)
	}
	return nil
}

// DeleteConsumer deletes a lane's consumer on peer; one already gone is fine.
func (t *TxnStream) DeleteConsumer(ctx context.Context, peer, name string) error {
	var r struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := t.apiRequest(ctx, apiPrefix(peer)+".CONSUMER.DELETE."+TxnStreamName+"."+name, nil, &r); err != nil {
		return err
	}
	if r.Error != nil && r.Error.ErrorCode != jetstream.JSErrCodeConsumerNotFound && r.Error.ErrorCode != jetstream.JSErrCodeStreamNotFound {
		return fmt.Errorf("peer %s: %s", peer, r.Error.Description)
	}
	return nil
}

// PeerLastSeqs returns, for each subject, the sequence of peer's last
// message on it at or below upTo (absent when there is none), in batched
// direct gets of up to 1000 subjects.
func (t *TxnStream) PeerLastSeqs(ctx context.Context, peer string, subjects []string, upTo uint64) (map[string]uint64, error) {
	out := make(map[string]uint64, len(subjects))
	if upTo == 0 {
		return out, nil
	}
	for start := 0; start < len(subjects); start += 1000 {
		chunk := subjects[start:min(start+1000, len(subjects))]
		if err := t.peerLast(ctx, peer, chunk, upTo, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t *TxnStream) peerLast(ctx context.Context, peer string, subjects []string, want uint64, out map[string]uint64) error {
	found := 0
	get := func(upTo uint64) error {
		req := map[string]any{"multi_last": subjects, "max_bytes": batchMaxBytes}
		if upTo > 0 {
			req["up_to_seq"] = upTo
		}
		return t.batchGet(ctx, apiPrefix(peer)+".DIRECT.GET."+TxnStreamName, req, func(m *nats.Msg) {
			seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if upTo == 0 && seq > want {
				return
			}
			out[m.Header.Get("Nats-Subject")] = seq
			found++
		})
	}
	if err := get(want); err != nil {
		return fmt.Errorf("peer %s: %w", peer, err)
	}
	// nats-server answers nothing when up_to_seq lies beyond the stream's
	// last sequence: then the stream's last messages are the answer.
	if found == 0 {
		if err := get(0); err != nil {
			return fmt.Errorf("peer %s: %w", peer, err)
		}
	}
	return nil
}

// batchGet sends one batched direct get and hands each message to each
// until the end-of-batch status.
func (t *TxnStream) batchGet(ctx context.Context, subject string, req any, each func(*nats.Msg)) error {
	inbox := t.NC.NewRespInbox()
	sub, err := t.NC.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(req)
	if err := t.NC.PublishRequest(subject, inbox, body); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("batched get on %s: %w", subject, err)
		}
		if st := m.Header.Get("Status"); st != "" {
			switch st {
			case "204", "404": // end of batch, or nothing on any subject
				return nil
			case "503":
				return fmt.Errorf("batched get on %s: no responders", subject)
			default:
				return fmt.Errorf("batched get on %s: status %s %s", subject, st, m.Header.Get("Description"))
			}
		}
		each(m)
	}
}
