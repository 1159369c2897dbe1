package events

import (
	"context"
	"testing"
)

// BenchmarkDispatch is the dispatcher's own cost per request, in-process: an
// operation replying from memory, with a valid super_user token and an empty
// body, through the router and its middleware chain and back.
func BenchmarkDispatch(b *testing.B) {
	type reply struct {
		Hub  []string `json:"hub"`
		Leaf []string `json:"leaf"`
	}
	run := func(context.Context, Caller, []byte) (any, error) {
		return reply{Hub: []string{}, Leaf: []string{}}, nil
	}
	d, key := newDispatcher(b, Operation{Name: "routed", Handler: "routed", Run: run})
	auth := mint(b, key, SuperUser)
	for _, op := range []string{"routed"} {
		b.Run(op, func(b *testing.B) {
			req := Request{Op: op, Body: []byte(`{}`), Authorization: auth}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if status, body := d.DispatchSync(ctx, req); status != 200 {
					b.Fatal(status, string(body))
				}
			}
		})
	}
}
