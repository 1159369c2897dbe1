package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterd/clusterd/auth"
	"github.com/clusterd/clusterd/events"
	"github.com/clusterd/clusterd/node/nodetest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
)

// TestMalformedRequestFlood sends thousands of malformed or unauthorized
// requests over NATS; each gets the right error status, the node keeps
// serving, and no desired state changes.
func TestMalformedRequestFlood(t *testing.T) {
	n := nodetest.StartNamed(t, "a")
	nc := nodetest.Connect(t, n)
	good := nodetest.SuperUser(t, n)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := auth.Mint(otherKey, "admin", events.SuperUser, time.Hour)
	expired := mintExpired(t, n)
	clusterUser, _ := n.Token("svc", "cluster_user", time.Hour)
	rng := mrand.New(mrand.NewPCG(1, 2))
	ops := []string{"cluster_set_routes", "cluster_delete_routes", "add_node", "update_node", "remove_node", "configure_cluster", "create_table"}

	type attempt struct {
		subject, token string
		body           []byte
		want           int
	}
	randomJSON := func() []byte {
		switch rng.IntN(8) {
		case 0:
			return []byte(strings.Repeat("[", 1+rng.IntN(20000)))
		case 1:
			b := make([]byte, 1+rng.IntN(200))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			return b
		case 2:
			return []byte(`{"server":` + strconv.Itoa(rng.IntN(9)) + `,"routes":"x","node_name":[],"subscriptions":{},"connections":7,"table":null}`)
		case 3:
			return []byte(`{"routes":[{"host":"` + "\xff\xfe" + `","port":"x"}],"server":"hub"}`)
		case 4:
			size := 64 << 10
			if rng.IntN(20) == 0 {
				size = 1 << 20 // a few at the 1 MiB limit
			}
			return append([]byte(`{"table":"`), append([]byte(strings.Repeat("a", size)), '"', '}')...)
		case 5:
			return []byte(`{"operation":"something_else"}`)
		case 6:
			return []byte(`"just a string"`)
		default:
			return []byte(`{"node_name":"a.b*","subscriptions":[{"table":"t","subscribe":"maybe","publish":2,"start_time":"nope"}]}`)
		}
	}
	var attempts []attempt
	for i := 0; i < 3000; i++ {
		op := ops[rng.IntN(len(ops))]
		a := attempt{subject: "ops.cluster." + op, token: good, body: randomJSON(), want: 400}
		switch rng.IntN(10) {
		case 0:
			a.token = ""
			a.want = 401
		case 1:
			a.token = forged
			a.want = 401
		case 2:
			a.token = expired
			a.want = 401
		case 3:
			a.token = clusterUser
			a.want = 403
		case 4:
			a.subject = "ops.cluster.no_such_" + strconv.Itoa(i)
		case 5:
			a.subject = "ops.node.a.cluster." + op
		}
		attempts = append(attempts, a)
	}
	before := n.Store.Commits()
	for i, a := range attempts {
		msg := nats.NewMsg(a.subject)
		msg.Data = a.body
		if a.token != "" {
			msg.Header.Set("Authorization", "Bearer "+a.token)
		}
		resp, err := nc.RequestMsg(msg, 5*time.Second)
		if len(a.body) > 1<<20 && err != nil {
			continue // over the server's max payload: refused by NATS itself
		}
		if err != nil {
			t.Fatalf("attempt %d (%s): %v", i, a.subject, err)
		}
		got, _ := strconv.Atoi(resp.Header.Get("Nats-Service-Error-Code"))
		if got != a.want {
			t.Fatalf("attempt %d (%s, body %.80q): status %d, want %d: %s", i, a.subject, a.body, got, a.want, resp.Data)
		}
		var body map[string]any
		if err := json.Unmarshal(resp.Data, &body); err != nil || body["error"] == "" {
			t.Fatalf("attempt %d: error body is not self-describing JSON: %s", i, resp.Data)
		}
	}
	if c := n.Store.Commits(); c != before {
		t.Fatalf("malformed requests committed %d writes", c-before)
	}
	// Still serving.
	if r := nodetest.Op(t, n, "cluster_get_routes", "{}"); r.Status != 200 {
		t.Fatalf("node stopped serving: %d %s", r.Status, r.Body)
	}
}

func mintExpired(t *testing.T, n interface{ IssuerKey() ed25519.PrivateKey }) string {
	now := time.Now()
	iss := auth.IssuerID(n.IssuerKey().Public().(ed25519.PublicKey))
	return sign(t, jwt.SigningMethodEdDSA, n.IssuerKey(), claims(iss, "super_user", now.Add(-2*time.Hour), now.Add(-time.Hour)))
}
