package handlers

import (
	"context"
	"fmt"

	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/storage"
)

var routeSchema = Schema{
	{Name: "host", Kind: kString, Required: true, NonEmpty: true, MaxLen: 253},
	{Name: "port", Kind: kNumber, Required: true, Integer: true, Min: ptr(0), Max: ptr(65535)},
}

var setRoutesSchema = Schema{
	{Name: "server", Kind: kString, Required: true, OneOf: []string{"hub", "leaf"}},
	{Name: "routes", Kind: kArray, Required: true, Items: routeSchema},
}

var deleteRoutesSchema = Schema{
	{Name: "routes", Kind: kArray, Required: true, Items: routeSchema},
}

// SetRoutesRequest is cluster_set_routes' body.
type SetRoutesRequest struct {
	Server string          `json:"server"`
	Routes []storage.Route `json:"routes"`
}

// SetRoutesReply is cluster_set_routes' reply.
type SetRoutesReply struct {
	Message string          `json:"message"`
	Set     []storage.Route `json:"set"`
	Skipped []storage.Route `json:"skipped"`
}

// DeleteRoutesRequest is cluster_delete_routes' body.
type DeleteRoutesRequest struct {
	Routes []storage.Route `json:"routes"`
}

// DeleteRoutesReply is cluster_delete_routes' reply.
type DeleteRoutesReply struct {
	Message string          `json:"message"`
	Deleted []storage.Route `json:"deleted"`
	Skipped []storage.Route `json:"skipped"`
}

// GetRoutesReply is cluster_get_routes' reply.
type GetRoutesReply struct {
	Hub  []storage.Route `json:"hub"`
	Leaf []storage.Route `json:"leaf"`
}

func indexOf(list []storage.Route, r storage.Route) int {
	for i, x := range list {
		if x == r {
			return i
		}
	}
	return -1
}

// SetRoutes adds routes to the hub or leaf list (upsert: a route already in
// either list is skipped). Idempotent.
func (o *Ops) SetRoutes(ctx context.Context, _ events.Caller, req SetRoutesRequest) (SetRoutesReply, error) {
	reply := SetRoutesReply{Message: "cluster routes successfully set", Set: []storage.Route{}, Skipped: []storage.Route{}}
	_, err := o.Store.UpdateRoutes(func(r *storage.Routes) error {
		reply.Set, reply.Skipped = reply.Set[:0], reply.Skipped[:0]
		for _, rt := range req.Routes {
			if indexOf(r.Hub, rt) >= 0 || indexOf(r.Leaf, rt) >= 0 {
				reply.Skipped = append(reply.Skipped, rt)
				continue
			}
			if req.Server == "hub" {
				r.Hub = append(r.Hub, rt)
			} else {
				r.Leaf = append(r.Leaf, rt)
			}
			reply.Set = append(reply.Set, rt)
		}
		if len(reply.Set) == 0 {
			return storage.ErrNoChange
		}
		return nil
	})
	if err != nil {
		return SetRoutesReply{}, fmt.Errorf("store routes: %w", err)
	}
	return reply, nil
}

// GetRoutes returns the desired routes.
func (o *Ops) GetRoutes(ctx context.Context, _ events.Caller, _ NoRequest) (GetRoutesReply, error) {
	r, err := o.Store.Routes()
	if err != nil {
		return GetRoutesReply{}, fmt.Errorf("load routes: %w", err)
	}
	return GetRoutesReply{Hub: nonNil(r.Hub), Leaf: nonNil(r.Leaf)}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DeleteRoutes removes each route from the hub list, else the leaf list.
func (o *Ops) DeleteRoutes(ctx context.Context, _ events.Caller, req DeleteRoutesRequest) (DeleteRoutesReply, error) {
	reply := DeleteRoutesReply{Message: "cluster routes successfully deleted", Deleted: []storage.Route{}, Skipped: []storage.Route{}}
	_, err := o.Store.UpdateRoutes(func(r *storage.Routes) error {
		reply.Deleted, reply.Skipped = reply.Deleted[:0], reply.Skipped[:0]
		for _, rt := range req.Routes {
			if i := indexOf(r.Hub, rt); i >= 0 {
				r.Hub = append(r.Hub[:i:i], r.Hub[i+1:]...)
			} else if i := indexOf(r.Leaf, rt); i >= 0 {
				r.Leaf = append(r.Leaf[:i:i], r.Leaf[i+1:]...)
			} else {
				reply.Skipped = append(reply.Skipped, rt)
				continue
			}
			reply.Deleted = append(reply.Deleted, rt)
		}
		if len(reply.Deleted) == 0 {
			return storage.ErrNoChange
		}
		return nil
	})
	if err != nil {
		return DeleteRoutesReply{}, fmt.Errorf("store routes: %w", err)
	}
	return reply, nil
}
