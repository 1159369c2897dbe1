package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clusterd/clusterd/storage"
	"go.uber.org/zap"
)

// startedMarker is written under rootPath at the end of every successful
// start: a node that has it (or JetStream data) has history, and an empty
// state store beside it means the store was lost, not that this is a first
// start.
const startedMarker = "clusterd.started"

// BeginAnewFlag is the command-line flag that lets a node with a damaged or
// lost state store start with an empty one.
const BeginAnewFlag = "--begin-anew"

func (n *Node) stateDir() string { return filepath.Join(n.Config.RootPath, "state") }

// history says what shows that this rootPath has run a node before ("" for
// nothing).
func (n *Node) history() string {
	marker := filepath.Join(n.Config.RootPath, startedMarker)
	if _, err := os.Stat(marker); err == nil {
		return "it started before (" + marker + ")"
	}
	js := filepath.Join(n.Config.RootPath, "jetstream")
	if ents, err := os.ReadDir(js); err == nil && len(ents) > 0 {
		return "it holds JetStream data (" + js + ")"
	}
	return ""
}

// openStore opens the state store, refusing to start on a damaged one, or on
// an empty one where the node has history, unless beginAnew: then a damaged
// store is moved aside (state.damaged-<time>) and the node starts with an
// empty one.
func (n *Node) openStore(beginAnew bool) (*storage.Store, error) {
	dir := n.stateDir()
	if h := n.history(); h != "" && !storage.HasState(dir) {
		if !beginAnew {
			return nil, fmt.Errorf("cannot start: the state store %s is empty or missing, but %s: the routes, nodes and tables this node held are gone. "+
				"Restore %s from a backup, or start with %s to begin with an empty state store (then set its routes again and re-add its nodes with add_node)",
				dir, h, dir, BeginAnewFlag)
		}
		n.log.Warn("beginning anew: the state store was empty or missing on a node with history", zap.String("store", dir), zap.String("history", h))
	}
	st, err := storage.Open(dir)
	if err == nil {
		return st, nil
	}
	var de *storage.DamageError
	if !errors.As(err, &de) {
		return nil, fmt.Errorf("cannot start: %w. If the store cannot be repaired, restore %s from a backup, or start with %s to move it aside and begin with an empty one", err, dir, BeginAnewFlag)
	}
	if !beginAnew {
		return nil, fmt.Errorf("cannot start: %w. The node refuses to run on a partial state. Restore %s from a backup, or start with %s to move it aside (to %s.damaged-<time>) and begin with an empty state store (then set its routes again and re-add its nodes with add_node)",
			err, dir, BeginAnewFlag, dir)
	}
	aside := dir + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(dir, aside); err != nil {
		return nil, fmt.Errorf("cannot start: move the damaged state store aside: %w", err)
	}
	n.log.Warn("beginning anew: damaged state store moved aside", zap.String("store", dir), zap.String("moved_to", aside), zap.String("damage", de.Error()))
	return storage.Open(dir)
}

// markStarted records that this rootPath has run a node (see history).
func (n *Node) markStarted() {
	p := filepath.Join(n.Config.RootPath, startedMarker)
	if err := os.WriteFile(p, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		n.log.Warn("could not record the successful start", zap.String("file", p), zap.Error(err))
	}
}
