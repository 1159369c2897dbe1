package membership

import (
	"fmt"
	"testing"
)

// A model of the node-record protocol's locking, explored over every
// interleaving: nodes with per-peer locks (and configure_cluster's lock on
// all of them), operations that lock locally, commit, tell the peers and
// wait for their answers, and callees that apply a change under their own
// lock for the caller. Records hold the id of the operation that wrote them
// last, so "mirrored" is "equal". Messages are delivered in any order, a
// callee that waits may give up at any time (its bounded wait), and retries
// may go on or stop (a link answering 409 after its retries; configure
// always goes on here, as the notices that re-sync peers after it gives up
// are not modelled). Backoff is not modelled: it only makes the fair
// schedules likely.
//
// What it checks, for the rule calleeLock implements (only the callee whose
// name sorts after the caller's waits; the other answers busy at once):
// no reachable state is stuck, from every reachable state every operation
// can still finish (no livelock trap), and when all have finished both ends
// of every pair hold the same record. With the old rule (every callee
// waits) the same model reaches a stuck state: the pair deadlock of #19.

const (
	maxNodes = 3
	maxOps   = 4
)

// Per operation and peer, the state of its call.
const (
	msgNone    int8 = iota
	msgSent         // on its way to the callee
	msgWaiting      // the callee waits for its lock
	msgOK           // applied, answered
	msgBusy         // answered busy: nothing applied
)

const (
	opLock int8 = iota // wants its lock(s)
	opCall             // committed locally (link), told its peers, waits
	opDone
)

type modelOp struct {
	node      int
	configure bool  // configure_cluster: all of the node's locks, peers below
	peers     []int // link: one peer
}

type mstate struct {
	lock [maxNodes][maxNodes]int8 // op id+1 holding node's lock for peer
	excl [maxNodes]int8           // op id+1 holding all of node's locks
	rec  [maxNodes][maxNodes]int8 // op id+1 that wrote node's record of peer last
	pc   [maxOps]int8
	prev [maxOps]int8 // a link's record before its local commit
	msg  [maxOps][maxNodes]int8
}

type model struct {
	ops      []modelOp
	oldRule  bool // every callee waits
	noRevert bool // a busy answer leaves the caller's commit in place (a broken rule)
}

// waits says whether callee waits for its lock when caller's call finds it
// held.
func (m *model) waits(caller, callee int) bool { return m.oldRule || callee > caller }

func (m *model) free(s *mstate, node, peer int) bool {
	return s.lock[node][peer] == 0 && s.excl[node] == 0
}

func (m *model) allFree(s *mstate, node int) bool {
	if s.excl[node] != 0 {
		return false
	}
	for p := range maxNodes {
		if s.lock[node][p] != 0 {
			return false
		}
	}
	return true
}

// next returns every state one step from s.
func (m *model) next(s mstate) []mstate {
	var out []mstate
	for i, op := range m.ops {
		id := int8(i + 1)
		n := op.node
		switch s.pc[i] {
		case opLock:
			t := s
			if op.configure {
				if !m.allFree(&t, n) {
					continue
				}
				t.excl[n] = id
			} else {
				p := op.peers[0]
				if !m.free(&t, n, p) {
					continue
				}
				t.lock[n][p] = id
				t.prev[i] = t.rec[n][p]
				t.rec[n][p] = id // local commit first
			}
			for _, p := range op.peers {
				t.msg[i][p] = msgSent
			}
			t.pc[i] = opCall
			out = append(out, t)
		case opCall:
			// The callees' side of this operation's calls.
			for _, p := range op.peers {
				switch s.msg[i][p] {
				case msgSent, msgWaiting:
					if m.free(&s, p, n) {
						t := s
						t.rec[p][n] = id // applied under the callee's lock, at once
						t.msg[i][p] = msgOK
						out = append(out, t)
						continue
					}
					if s.msg[i][p] == msgSent && m.waits(n, p) {
						t := s
						t.msg[i][p] = msgWaiting
						out = append(out, t)
					}
					if !m.oldRule {
						// Busy at once, or a bounded wait giving up.
						t := s
						t.msg[i][p] = msgBusy
						out = append(out, t)
					}
				}
			}
			// The caller, once every answer is in.
			done, busy := true, false
			for _, p := range op.peers {
				done = done && (s.msg[i][p] == msgOK || s.msg[i][p] == msgBusy)
				busy = busy || s.msg[i][p] == msgBusy
			}
			if !done {
				continue
			}
			t := s
			for _, p := range op.peers {
				t.msg[i][p] = msgNone
			}
			if op.configure {
				t.excl[n] = 0
				if !busy {
					for _, p := range op.peers {
						t.rec[n][p] = id // the switch, after every peer applied
					}
				}
			} else {
				p := op.peers[0]
				t.lock[n][p] = 0
				if busy && !m.noRevert {
					t.rec[n][p] = t.prev[i] // put back
				}
			}
			t.prev[i] = 0
			t.pc[i] = opDone
			if busy {
				if !op.configure {
					// Out of retries: 409, with the record put back.
					out = append(out, t)
				}
				t.pc[i] = opLock // retry
			}
			out = append(out, t)
		}
	}
	return out
}

type exploration struct {
	states   int
	stuck    *mstate // a state with no step that is not final
	trapped  int     // states from which no final state is reachable
	unmirror *mstate // a final state whose pairs differ
}

func (m *model) final(s mstate) bool {
	for i := range m.ops {
		if s.pc[i] != opDone {
			return false
		}
	}
	return true
}

func (m *model) explore() exploration {
	var init mstate
	index := map[mstate]int{init: 0}
	states := []mstate{init}
	var preds [][]int
	preds = append(preds, nil)
	var ex exploration
	var finals []int
	for i := 0; i < len(states); i++ {
		s := states[i]
		nexts := m.next(s)
		if m.final(s) {
			finals = append(finals, i)
			for a := range maxNodes {
				for b := range maxNodes {
					if s.rec[a][b] != s.rec[b][a] && ex.unmirror == nil {
						c := s
						ex.unmirror = &c
					}
				}
			}
			continue
		}
		if len(nexts) == 0 && ex.stuck == nil {
			c := s
			ex.stuck = &c
		}
		for _, t := range nexts {
			j, ok := index[t]
			if !ok {
				j = len(states)
				index[t] = j
				states = append(states, t)
				preds = append(preds, nil)
			}
			preds[j] = append(preds[j], i)
		}
	}
	ex.states = len(states)
	// Every state must reach a final one: walk back from the finals.
	reach := make([]bool, len(states))
	queue := append([]int(nil), finals...)
	for _, f := range finals {
		reach[f] = true
	}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		for _, i := range preds[j] {
			if !reach[i] {
				reach[i] = true
				queue = append(queue, i)
			}
		}
	}
	for _, r := range reach {
		if !r {
			ex.trapped++
		}
	}
	return ex
}

func link(node, peer int) modelOp { return modelOp{node: node, peers: []int{peer}} }
func configure(node int, peers ...int) modelOp {
	return modelOp{node: node, configure: true, peers: peers}
}

var modelScenarios = []struct {
	name string
	ops  []modelOp
}{
	{"both ends of a pair", []modelOp{link(0, 1), link(1, 0)}},
	{"both ends twice", []modelOp{link(0, 1), link(1, 0), link(0, 1), link(1, 0)}},
	{"a ring of three", []modelOp{link(0, 1), link(1, 2), link(2, 0)}},
	{"the other ring", []modelOp{link(0, 2), link(2, 1), link(1, 0)}},
	{"configure against links", []modelOp{configure(0, 1, 2), link(1, 0), link(2, 0), link(1, 2)}},
	{"configure at the top against links", []modelOp{configure(2, 0, 1), link(0, 2), link(1, 2), link(0, 1)}},
	{"two configures", []modelOp{configure(0, 1), configure(1, 0), link(0, 1)}},
	{"three configures", []modelOp{configure(0, 1, 2), configure(1, 0, 2), configure(2, 0, 1)}},
}

func TestModelNoInterleavingDeadlocksAndPairsEndMirrored(t *testing.T) {
	for _, sc := range modelScenarios {
		t.Run(sc.name, func(t *testing.T) {
			m := &model{ops: sc.ops}
			ex := m.explore()
			t.Logf("%d states", ex.states)
			if ex.stuck != nil {
				t.Fatalf("stuck state: %+v", *ex.stuck)
			}
			if ex.trapped > 0 {
				t.Fatalf("%d states from which the operations can never all finish", ex.trapped)
			}
			if ex.unmirror != nil {
				t.Fatalf("final state with records that differ: %+v", *ex.unmirror)
			}
		})
	}
}

// TestModelOldRuleDeadlocks: with every callee waiting for its lock — the
// rule before #19 — the model finds the pair deadlock, so the explorer can
// fail.
func TestModelOldRuleDeadlocks(t *testing.T) {
	for _, name := range []string{"both ends of a pair", "configure against links"} {
		var ops []modelOp
		for _, sc := range modelScenarios {
			if sc.name == name {
				ops = sc.ops
			}
		}
		ex := (&model{ops: ops, oldRule: true}).explore()
		if ex.stuck == nil {
			t.Errorf("%s: the old rule explored %d states without a deadlock", name, ex.states)
		} else {
			t.Logf("%s: deadlock %s", name, describe(*ex.stuck))
		}
	}
}

func describe(s mstate) string {
	return fmt.Sprintf("locks %v, configure locks %v, calls %v", s.lock, s.excl, s.msg)
}

// TestModelFindsRecordsThatDiffer: a caller that kept its commit after a
// busy answer would leave the pair's records different; the explorer sees it.
func TestModelFindsRecordsThatDiffer(t *testing.T) {
	ex := (&model{ops: modelScenarios[0].ops, noRevert: true}).explore()
	if ex.unmirror == nil {
		t.Fatalf("explored %d states without finding records that differ", ex.states)
	}
}
