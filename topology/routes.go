package topology

import (
	"context"
	"fmt"

	"github.com/clusterd/clusterd/storage"
)

// RouteReconciler converges the hub's cluster routes and the leaf server's
// leafnode remotes to the desired routes. A route removed from the servers
// behind its back is restored on the next pass.
type RouteReconciler struct {
	Store   *storage.Store
	Servers *Servers
}

// Reconcile implements ReconcileFunc.
func (r *RouteReconciler) Reconcile(ctx context.Context) (bool, error) {
	want, err := r.Store.Routes()
	if err != nil {
		return false, fmt.Errorf("load desired routes: %w", err)
	}
	hub, leaf, err := r.Servers.ObservedRoutes()
	if err != nil {
		return false, fmt.Errorf("observe routes: %w", err)
	}
	changed := false
	if !SameRoutes(want.Hub, hub) {
		if err := r.Servers.ApplyHubRoutes(want.Hub); err != nil {
			return false, err
		}
		changed = true
	}
	if !SameRoutes(want.Leaf, leaf) {
		if err := r.Servers.ApplyLeafRoutes(want.Leaf); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}
