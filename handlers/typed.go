package handlers

import (
	"context"

	"github.com/clusterd/clusterd/events"
)

// checker is a request with rules across its fields, beyond its schema;
// check returns HarperDB-style problems.
type checker interface{ check() []string }

// typed adapts a typed operation to the router's untyped form: gate first
// (clustering disabled is answered before validation), then the body is
// decoded and validated against schema — every problem reported together,
// in HarperDB's words — and the request's own check runs; only a valid
// request reaches run.
func typed[Req any, Rep any](gate func() error, schema func() Schema, run func(context.Context, events.Caller, Req) (Rep, error)) func(context.Context, events.Caller, []byte) (any, error) {
	return func(ctx context.Context, caller events.Caller, body []byte) (any, error) {
		if gate != nil {
			if err := gate(); err != nil {
				return nil, err
			}
		}
		var req Req
		if err := decodeInto(body, schema(), &req); err != nil {
			return nil, err
		}
		if c, ok := any(req).(checker); ok {
			if err := validationError(c.check()); err != nil {
				return nil, err
			}
		}
		return run(ctx, caller, req)
	}
}

// requireClustering gates the node operations.
func (o *Ops) requireClustering() error {
	if !o.ClusteringEnabled {
		return errClusteringDisabled
	}
	return nil
}

// NoRequest is the request of operations that take no fields (the body must
// still be a JSON object).
type NoRequest struct{}

func noSchema() Schema { return nil }

func schemaOf(s Schema) func() Schema { return func() Schema { return s } }
