package handlers

import (
	"fmt"

	"github.com/clusterd/clusterd/storage"
)

// badNameError explains why a stored subscription with a name that breaks
// the naming rule (stored before the rule existed) is not replicated, and
// what the operator can do; "" for a valid one.
func badNameError(peer string, k storage.TableKey) string {
	if p := storage.NameProblem(peer); p != "" {
		return fmt.Sprintf("not replicated: node name %q %s (stored before names were checked); remove_node it and add the node under a valid name", peer, p)
	}
	if p := storage.TableNameProblem(k); p != "" {
		return fmt.Sprintf("not replicated: %s (stored before names were checked); remove_node '%s' and add it again without this table", p, peer)
	}
	return ""
}

// replicable is n without the subscriptions badNameError refuses: their
// subjects are not valid NATS subjects, so asking the stream about them
// would fail the question for every other table.
func replicable(n storage.Node) storage.Node {
	out := n
	out.Subscriptions = nil
	for _, s := range n.Subscriptions {
		if badNameError(n.Name, s.Key()) == "" {
			out.Subscriptions = append(out.Subscriptions, s)
		}
	}
	return out
}

// lossError says what of peer's transactions on table k this node lost and
// has not fetched again ("" when nothing): such a subscription is not
// converged however its source is doing.
func (o *Ops) lossError(peer string, k storage.TableKey) string {
	for _, r := range o.Loss.Records() {
		if r.Origin == peer && r.Table == k && !r.Recovered {
			return r.Problem()
		}
	}
	return ""
}
