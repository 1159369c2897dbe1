package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/clusterd/clusterd/events"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// ErrStartInterrupted is Start's error when its ctx ended before the node
// was up (a signal during start-up); what Start did is undone.
var ErrStartInterrupted = errors.New("start interrupted")

// interrupted says ErrStartInterrupted (with ctx's cause) once ctx ended.
func interrupted(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrStartInterrupted, err)
	}
	return nil
}

// component is one long-running part of a node: it works until ctx ends and
// returns nil then; an error it returns ends the whole group (the other
// components see their ctx end) and is logged by Close.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// untilDone adapts a component that has nothing to report when it stops.
func untilDone(run func(ctx context.Context)) func(ctx context.Context) error {
	return func(ctx context.Context) error { run(ctx); return nil }
}

// runComponents starts every component under one errgroup. Their context is
// ctx without its cancellation: Start's ctx bounds the start-up only, and the
// running node stops on Close, which stops the intake before it ends the
// components (so an operation in flight still finds them).
func (n *Node) runComponents(ctx context.Context, cs ...component) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(wctx)
	for _, c := range cs {
		g.Go(func() error {
			if err := c.run(gctx); err != nil {
				return &componentError{name: c.name, err: err}
			}
			return nil
		})
	}
	n.cancel, n.group = cancel, g
}

// stopComponents ends the components' context and waits for all of them.
func (n *Node) stopComponents() {
	if n.group == nil {
		return
	}
	n.cancel()
	if err := n.group.Wait(); err != nil {
		n.log.Warn("component failed", zap.Error(err))
	}
}

type componentError struct {
	name string
	err  error
}

func (e *componentError) Error() string { return e.name + ": " + e.err.Error() }
func (e *componentError) Unwrap() error { return e.err }

// announceRestart tells the peers once this node's replication has converged
// (its stream is back) that it restarted, so they recreate the consumers of
// their sources from it at once; peers act once per boot.
func (n *Node) announceRestart(ctx context.Context, peers *events.PeerClient) error {
	select {
	case <-n.replLoop.Converged():
	case <-ctx.Done():
		return nil
	}
	// Wait for the mesh (routes are configured by now), then say it a few
	// times in case routes were still forming.
	for deadline := time.Now().Add(10 * time.Second); len(n.Servers.RoutedPeers()) == 0 && time.Now().Before(deadline); {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
	boot := []byte(strconv.FormatInt(n.started.UnixNano(), 10))
	for _, d := range []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second} {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
		_ = peers.Announce("restarted", boot)
	}
	return nil
}

// drain drains nc and waits until it is closed (its pending replies and
// published messages flushed), at most timeout, then closes it.
func drain(nc *nats.Conn, timeout time.Duration) {
	closed := nc.StatusChanged(nats.CLOSED)
	defer nc.RemoveStatusListener(closed)
	if err := nc.Drain(); err == nil && !nc.IsClosed() {
		t := time.NewTimer(timeout)
		select {
		case <-closed:
		case <-t.C:
		}
		t.Stop()
	}
	nc.Close()
}
