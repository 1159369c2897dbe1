package events

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A broadcast reaches every node's peer server, each reply names its node,
// and the caller stops waiting as soon as it has what it needs.
func TestBroadcastReachesEveryNode(t *testing.T) {
	nc := peerTestConn(t)
	for _, name := range []string{"a", "b", "c"} {
		srv, err := StartPeerServer(nc, name, "pw", map[string]PeerHandler{"who": func(_ context.Context, from string, _ []byte) (any, error) {
			return map[string]string{"from": from}, nil
		}}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
	}
	var nodes []string
	start := time.Now()
	err := NewPeerClient(nc, "a", "pw", time.Second).Broadcast(context.Background(), "who", struct{}{}, 5*time.Second, func(r PeerReply) bool {
		var got map[string]string
		if r.Err != nil || json.Unmarshal(r.Result, &got) != nil || got["from"] != "a" || r.Elapsed <= 0 {
			t.Errorf("reply %+v", r)
		}
		nodes = append(nodes, r.Node)
		return len(nodes) == 3
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("broadcast took %v though every node answered", took)
	}
	sort.Strings(nodes)
	if len(nodes) != 3 || nodes[0] != "a" || nodes[1] != "b" || nodes[2] != "c" {
		t.Fatalf("replies from %v", nodes)
	}

	// Running out of time is not an error; a non-member is refused by all.
	var refused int
	start = time.Now()
	err = NewPeerClient(nc, "x", "wrong", time.Second).Broadcast(context.Background(), "who", struct{}{}, 300*time.Millisecond, func(r PeerReply) bool {
		if re, ok := r.Err.(*RemoteError); ok && re.Message == "inter-node request is not signed by a cluster member" {
			refused++
		}
		return false
	})
	if err != nil || refused != 3 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("non-member broadcast: err %v, refused by %d, after %v", err, refused, time.Since(start))
	}
}
