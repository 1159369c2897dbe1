package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/clusterd/clusterd/topology"
)

// A peer's tables outgrowing their lane (added after the lane was made)
// split it into more lanes, while transactions keep coming: none lost or
// doubled, each table's in order.
func TestLanesSplitAsTablesGrow(t *testing.T) {
	nodes := mesh(t, "a", "b")
	a, b := nodes[0], nodes[1]
	tables := topology.MaxLaneTables + 20
	for _, n := range nodes {
		for i := 0; i < tables; i++ {
			op(t, n, "create_table", map[string]any{"table": fmt.Sprintf("t%03d", i)}, 200)
		}
	}
	op(t, a, "add_node", map[string]any{"node_name": "b", "subscriptions": []any{sub("t000", true, false)}}, 200)
	nodetest.Eventually(t, 10*time.Second, "one lane for b", func() bool {
		st := a.Repl.Status()["b"]
		return st.Sources == 1 && st.Converged
	})
	const written = 5 // tables written to while the lane splits
	var subjects []string
	for i := 0; i < written; i++ {
		subjects = append(subjects, fmt.Sprintf("txn.data.t%03d.b", i))
	}
	sent, stop := writeRounds(t, b, subjects)
	var all []any
	for i := 0; i < tables; i++ {
		all = append(all, sub(fmt.Sprintf("t%03d", i), true, false))
	}
	nodetest.Eventually(t, 10*time.Second, "writes under way", func() bool { return sent.Load() >= 20 })
	before := int(sent.Load()) // written before the other tables were subscribed
	op(t, a, "update_node", map[string]any{"node_name": "b", "subscriptions": all}, 200)
	want := topology.LaneCount(tables)
	nodetest.Eventually(t, 30*time.Second, fmt.Sprintf("%d lanes for b", want), func() bool {
		st := a.Repl.Status()["b"]
		return st.Sources == want && st.CatchingUp == 0 && st.Converged
	})
	time.Sleep(100 * time.Millisecond) // a little traffic on the split lanes too
	n := stop()
	// t000 was subscribed from the start; the others from when they were
	// added (while writes went on): their copies are a gapless tail.
	for i := 0; i < written; i++ {
		subj := fmt.Sprintf("txn.data.t%03d.b", i)
		nodetest.Eventually(t, 20*time.Second, subj+" complete on a", func() bool {
			got := received(t, a, subj)
			return len(got) > 0 && got[len(got)-1] == fmt.Sprint(n-1)
		})
		got := received(t, a, subj)
		if i == 0 && len(got) != n {
			t.Fatalf("%s: a holds %d, want %d", subj, len(got), n)
		}
		first := n - len(got)
		if i > 0 && first < before {
			t.Fatalf("%s: a holds transaction %d, written before the table was subscribed (from %d)", subj, first, before)
		}
		for j, p := range got {
			if p != fmt.Sprint(first+j) {
				t.Fatalf("%s: position %d holds %q, want %d (lost, duplicated or reordered)", subj, j, p, first+j)
			}
		}
	}
}
